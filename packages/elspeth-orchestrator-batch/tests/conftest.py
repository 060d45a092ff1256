"""Fixtures: a registry of core's builtins, the batch orchestrator and a few small test plugins."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from elspeth import LLMRequest, LLMResponse, Registrar, Row, Table, Usage, hookimpl, inline
from elspeth.discovery import PluginSource
from elspeth.llm_errors import LLMServerError
from elspeth.registry import Registry
from elspeth_testing import build_registry, plugin_module

BATCH = PluginSource("batch", "elspeth-orchestrator-batch", "0.1.0", "elspeth_batch.plugin")

# processors and retrieval are their own distributions: the registry has them when they are installed
# (the workspace), and the tests that use them are skipped where they are not (built wheels, isolated)
PLUGIN_DISTS = [
    PluginSource(label, dist, "0.1.0", f"{module}.plugin")
    for label, dist, module in (
        ("processors", "elspeth-processors", "elspeth_processors"),
        ("retrieval", "elspeth-retrieval", "elspeth_retrieval"),
    )
    if importlib.util.find_spec(module) is not None
]


def _jitter(row_id: str, spread_ms: float) -> float:
    digest = hashlib.sha256(row_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * spread_ms / 1000


class ScriptedClient:
    """Replies chosen per row id; some rows fail; each row waits a deterministic, row-dependent time.

    ``fail_rows`` raise a plain RuntimeError (never retried); ``server_errors`` raise a retryable 503
    the given number of times for a row before it is answered.
    """

    name = "scripted"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        replies: dict[str, str] = Field(default_factory=dict, description="row id to reply")
        default: str = Field("{user}", description="reply for other rows: {user} and {params} are replaced")
        fail_rows: list[str] = Field(default_factory=list, description="row ids whose call raises")
        jitter_ms: float = Field(0.0, description="up to this long a wait, different per row")
        slow_rows: dict[str, float] = Field(default_factory=dict, description="row id to a wait in ms")
        server_errors: dict[str, int] = Field(default_factory=dict, description="row id to 503s before a reply")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.calls: dict[str, int] = {}

    async def generate(self, request: LLMRequest) -> LLMResponse:
        row_id = str(request.metadata["row_id"])
        wait = self.options.slow_rows.get(row_id, 0.0) / 1000 + _jitter(row_id, self.options.jitter_ms)
        if wait:
            await asyncio.sleep(wait)
        self.calls[row_id] = self.calls.get(row_id, 0) + 1
        if row_id in self.options.fail_rows:
            raise RuntimeError(f"scripted failure for row {row_id}")
        if self.calls[row_id] <= self.options.server_errors.get(row_id, 0):
            raise LLMServerError(f"scripted 503 for row {row_id}", status=503)
        default = self.options.default.replace("{user}", request.user)
        default = default.replace("{params}", json.dumps(request.params, sort_keys=True))
        content = self.options.replies.get(row_id, default)
        return LLMResponse(content=content, usage=Usage(len(request.user), len(content)), model="scripted")


class AddLength:
    """Adds `length`: the length of the review."""

    name = "add_length"
    adds_fields = ("length",)

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**data, "length": len(str(data.get("review", "")))}


class Upper:
    """Upper-cases one column."""

    name = "upper"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        column: str = Field(description="the column")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.opened = False

    def open(self, ctx: Any) -> None:
        self.opened = True

    async def process(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        assert self.opened, "open() runs before the first row"
        return {**data, self.options.column: str(data[self.options.column]).upper()}


class Explode:
    """Raises for rows whose `column` holds `value`."""

    name = "explode"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        column: str
        value: str

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def process(self, data: Mapping[str, Any]) -> None:
        if str(data.get(self.options.column)) == self.options.value:
            raise ValueError(f"{self.options.column} is {self.options.value}")


class Generated:
    """``rows`` reviews made on the fly, from a generator that cannot say how many it holds (no ``len``)."""

    name = "generated"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        rows: int = Field(description="how many rows")

    def __init__(self, options: Options) -> None:
        self.options = options

    def load(self, ctx: Any) -> Table:
        products = ["kettle", "toaster", "lamp"]

        def rows() -> Iterator[Row]:
            for i in range(self.options.rows):
                yield Row(f"r{i:04d}", {"id": f"r{i:04d}", "product": products[i % 3], "review": f"review {i}"}, i)

        return Table(columns=["id", "product", "review"], rows=rows(), source="generated")


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    register(ScriptedClient)


@hookimpl
def register_datasources(register: Registrar) -> None:
    register(Generated)


@hookimpl
def register_processors(register: Registrar) -> None:
    register(AddLength)
    register(Upper)
    register(Explode)


TEST_PLUGINS = plugin_module("batch_test_plugins", register_llm_clients, register_processors, register_datasources)


@pytest.fixture
def registry() -> Registry:
    """Core's builtins, the batch orchestrator and the test plugins above."""
    return build_registry(BATCH, *PLUGIN_DISTS, TEST_PLUGINS)


@pytest.fixture
def registry_with() -> Callable[..., Registry]:
    """``registry_with(module, ...)``: the ``registry`` above plus more plugin modules (observers, ...)."""

    def build(*modules: ModuleType) -> Registry:
        return build_registry(BATCH, *PLUGIN_DISTS, TEST_PLUGINS, *modules)

    return build


def _reviews_csv(rows: int) -> str:
    lines = ["id,product,review"]
    products = ["kettle", "toaster", "lamp"]
    for i in range(rows):
        lines.append(f"r{i:04d},{products[i % 3]},review number {i}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def reviews_csv() -> Any:
    """``reviews_csv(n)``: a CSV of ``n`` reviews (id, product, review) with ids r0000, r0001, ..."""
    return _reviews_csv
