"""Fixtures: a registry built from this package plus small test plugins, and a one-call suite runner."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from elspeth import LLMRequest, LLMResponse, RunResult, Usage, hookimpl
from elspeth.config import load_settings_text
from elspeth.discovery import PluginSource, load_registry
from elspeth.engine import run_settings
from elspeth.registry import Registry

EXPERIMENT_SOURCE = PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin")


def _unit(*parts: object) -> random.Random:
    seed = int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")
    return random.Random(seed)


class GaussClient:
    """Scores drawn from known normal distributions: a row effect shared by every experiment, plus noise."""

    name = "gauss"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        mean: float = Field(5.0, description="true mean score")
        sd: float = Field(1.0, description="per-call noise")
        row_sd: float = Field(1.0, description="spread of the row effect shared across experiments")
        seed: int = Field(0, description="seed of the noise")
        fail_rows: list[str] = Field(default_factory=list, description="row ids whose call raises")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.calls: list[LLMRequest] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        opts = self.options
        row_id = request.metadata["row_id"]
        if row_id in opts.fail_rows:
            raise RuntimeError(f"gauss refuses row {row_id}")
        row_effect = _unit("row", row_id).gauss(0.0, opts.row_sd)
        noise = _unit(opts.seed, row_id, request.metadata.get("criterion")).gauss(0.0, opts.sd)
        score = opts.mean + row_effect + noise
        return LLMResponse(content=f"Score: {score:.6f}", usage=Usage(10, 3), model="gauss")


class EchoClient:
    """Replies with JSON that shows which prompts and options produced the reply."""

    name = "echo"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        tag: str = Field("default", description="echoed back")
        score: float = Field(1.0, description="echoed back as `score`")
        cost: float | None = Field(None, description="attached to every response's metrics")

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        reply = {
            "system": request.system,
            "user": request.user,
            "tag": self.options.tag,
            "score": self.options.score,
            "attempt": request.metadata.get("validation_attempt"),
        }
        metrics: dict[str, Any] = {} if self.options.cost is None else {"cost": self.options.cost}
        usage = Usage(len(request.user), 7)
        return LLMResponse(content=json.dumps(reply), usage=usage, model="echo", metrics=metrics)


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(GaussClient)
    register(EchoClient)


CLIENTS = types.SimpleNamespace(register_llm_clients=register_llm_clients)


def build_registry(*modules: object) -> Registry:
    sources = [EXPERIMENT_SOURCE, PluginSource("test-clients", "test-clients", "0", CLIENTS)]
    sources += [PluginSource(f"test-{i}", f"test-plugins-{i}", "0", m) for i, m in enumerate(modules)]
    registry = load_registry(sources=sources, environ={})
    broken = [p for p in registry if p.status != "ok"]
    assert not broken, broken
    return registry


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def default_rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i:03d}", "text": f"item number {i}"} for i in range(n)]


RunSuite = Callable[..., RunResult]


@pytest.fixture
def run_suite(tmp_path: Path) -> RunSuite:
    """Run the experiment orchestrator over rows with the given options; returns the RunResult."""

    def run(
        options: Mapping[str, Any],
        *,
        rows: Sequence[Mapping[str, Any]] | int = 6,
        llm: Mapping[str, Any] | str | None = None,
        prompts: Mapping[str, Any] | None = None,
        modules: Sequence[object] = (),
        concurrency: int = 4,
        settings_extra: Mapping[str, Any] | None = None,
    ) -> RunResult:
        data = default_rows(rows) if isinstance(rows, int) else rows
        write_rows(tmp_path / "data.csv", data)
        settings = {
            "name": "test",
            "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
            "llm": llm if llm is not None else {"plugin": "echo"},
            "prompts": prompts if prompts is not None else {"system": "judge", "user": "Rate: {{ text }}"},
            "concurrency": concurrency,
            "orchestrator": {"plugin": "experiment", "options": dict(options)},
            **(settings_extra or {}),
        }
        loaded = load_settings_text(json.dumps(settings), base_dir=tmp_path)
        return run_settings(loaded, build_registry(*modules))

    return run
