"""Fixtures: a registry of core's builtins, the validation orchestrator and small rule and processor plugins."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from elspeth import Registrar, ValidationFailed, hookimpl, inline
from elspeth.discovery import PluginSource
from elspeth.registry import Registry
from elspeth_testing import build_registry, plugin_module
from elspeth_validation import Rejected

VALIDATION = PluginSource("validation", "elspeth-orchestrator-validation", "0.1.0", "elspeth_validation.plugin")

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


class _Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field("name", description="the column the rule reads")


class NoSpaces:
    """Returns Rejected(reason, column) when the column holds a space, and the row otherwise."""

    name = "no_spaces"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any] | Rejected:
        if " " in str(data.get(self.options.column, "")):
            return Rejected(f"'{self.options.column}' has a space", column=self.options.column)
        return data


class Tracked:
    """Passes every row, but only once opened; writes `closed-<column>.txt` in the output folder when closed."""

    name = "tracked"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options
        self.folder: Any = None

    def open(self, ctx: Any) -> None:
        self.folder = ctx.output_dir

    @inline
    def process(self, data: Mapping[str, Any]) -> None:
        if self.folder is None:
            raise RuntimeError("tracked was not opened")

    def close(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"closed-{self.options.column}.txt").write_text("closed", encoding="utf-8")


class Shouting:
    """Raises ValidationFailed when the column is all capitals."""

    name = "shouting"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options

    def process(self, data: Mapping[str, Any]) -> None:  # sync: run in a worker thread
        value = str(data.get(self.options.column, ""))
        if value.isupper():
            raise ValidationFailed(f"'{value}' is shouting")


class Falsy:
    """Returns False for rows whose column is `bad`, a reason string for `worse`."""

    name = "falsy"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options

    async def process(self, data: Mapping[str, Any]) -> bool | str | None:
        value = data.get(self.options.column)
        if value == "bad":
            return False
        if value == "worse":
            return "worse is not allowed"
        return None


class Buggy:
    """Raises KeyError on every row (a rule with a bug)."""

    name = "buggy"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options

    @inline
    def process(self, data: Mapping[str, Any]) -> None:
        raise KeyError("oops")


class Slow:
    """Waits a row-dependent time, then passes: rows finish out of order."""

    name = "slow"
    Options = _Column

    def __init__(self, options: _Column) -> None:
        self.options = options

    async def process(self, data: Mapping[str, Any]) -> None:
        digest = hashlib.sha256(str(data.get(self.options.column)).encode()).digest()
        await asyncio.sleep(digest[0] / 255 * 0.01)


class AddDomain:
    """Adds `domain`: the part of `email` after the @ (fails on a row without one)."""

    name = "add_domain"
    adds_fields = ("domain",)

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        email = str(data.get("email") or "")
        if email == "crash":
            raise RuntimeError("cannot split 'crash'")
        return {**data, "domain": email.partition("@")[2]}


@hookimpl
def register_processors(register: Registrar) -> None:
    for cls in (NoSpaces, Tracked, Shouting, Falsy, Buggy, Slow, AddDomain):
        register(cls)


TEST_PLUGINS = plugin_module("validation_test_plugins", register_processors)


@pytest.fixture
def registry() -> Registry:
    """Core's builtins, the validation orchestrator and the test plugins above."""
    return build_registry(VALIDATION, *PLUGIN_DISTS, TEST_PLUGINS)


PEOPLE = """\
id,name,email,age,country
1,ann,ann@example.org,34,GB
2,bob smith,bob-at-example,17,FR
3,CAROL,carol@example.org,,DE
4,dan,dan@example.org,290,GB
1,eve,eve@example.org,41,FR
6,,=HYPERLINK("x"),12,GB
7,bad,g@example.org,50,GB
8,worse,h@example.org,abc,GB
"""


@pytest.fixture
def people() -> str:
    """Eight people, most of them breaking some rule (see each test)."""
    return PEOPLE
