"""Fixtures: a registry of core's builtins, the streaming plugins, and an endless source and a slow sink for tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from elspeth import Artifact, Failure, PluginContext, PluginSource, Record, Registrar, Row, RunResult, Table, hookimpl
from elspeth.registry import Registry
from elspeth_testing import build_registry, plugin_module

STREAMING = PluginSource("streaming", "elspeth-orchestrator-streaming", "0.1.0", "elspeth_streaming.plugin")
EXPERIMENT = PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin")

READ: list[int] = []  # messages the endless source has handed out, per run (reset by the fixture)
EMITTED: list[Record | Failure] = []  # what the slow sink received, in order


class Endless:
    """Messages ``m0``, ``m1``, ... without end, counting how many were read."""

    name = "endless"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    def load(self, ctx: PluginContext) -> Table:
        async def rows() -> AsyncIterator[Row]:
            i = 0
            while True:
                READ.append(i)
                yield Row(f"m{i}", {"text": f"message {i}"}, i)
                i += 1
                await asyncio.sleep(0)

        return Table(columns=["text"], rows=rows(), source="endless")


class SlowSink:
    """A streaming sink that takes ``delay_ms`` per emit, keeping what it received in ``EMITTED``."""

    name = "slow"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        delay_ms: float = Field(0.0)
        fail_after: int | None = Field(None, description="raise once this many results were received")

    def __init__(self, options: Options) -> None:
        self.options = options

    async def emit(self, items: Sequence[Record | Failure]) -> None:
        await asyncio.sleep(self.options.delay_ms / 1000)
        if self.options.fail_after is not None and len(EMITTED) >= self.options.fail_after:
            raise OSError("the disk went away")
        EMITTED.extend(items)

    async def holds(self, ids: Sequence[str]) -> set[str]:
        return {item.row_id for item in EMITTED} & set(ids)

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        return []


class WholeOnly:
    """An aggregator that sums up only an experiment's whole result (``finalize_result``), never a window."""

    name = "whole_only"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    def finalize_result(self, result: Any) -> dict[str, Any]:
        return {"rows": len(result.records)}


@hookimpl
def register_datasources(register: Registrar) -> None:
    register(Endless)


@hookimpl
def register_aggregators(register: Registrar) -> None:
    register(WholeOnly)


@hookimpl
def register_sinks(register: Registrar) -> None:
    register(SlowSink)


TEST_PLUGINS = plugin_module("streaming_test_plugins", register_datasources, register_sinks, register_aggregators)


@pytest.fixture
def registry() -> Registry:
    """Core's builtins, the streaming plugins, the experiment's (its aggregators, for windows) and the test plugins."""
    READ.clear()
    EMITTED.clear()
    return build_registry(STREAMING, EXPERIMENT, TEST_PLUGINS)


def read_results(folder: Path) -> list[dict[str, Any]]:
    """Every line of every ``jsonl_stream`` file in ``folder``, in file order."""
    lines: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    return lines


@pytest.fixture
def results() -> Any:
    """``results(folder)``: the lines the jsonl_stream sink wrote there."""
    return read_results


@pytest.fixture
def seen() -> tuple[list[int], list[Record | Failure]]:
    """``(read, emitted)``: what the ``endless`` source handed out and the ``slow`` sink received in this test."""
    return READ, EMITTED
