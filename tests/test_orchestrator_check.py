"""An orchestrator's ``check`` may be ``async def``, like every other plugin method: it is awaited before
any row, during ``elspeth validate`` and ``elspeth run`` alike, and its problems name their place. An
experiment sub-plugin's ``setup`` runs inside that check and must be a plain ``def``: an ``async def``
one is refused at its place instead of being left unawaited."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from elspeth import ConfigError, OrchestrationContext, RunResult, Table, hookimpl
from elspeth.config import load_settings
from elspeth.discovery import PluginSource
from elspeth.engine import prepare
from elspeth_testing import build_registry, plugin_module
from elspeth_testing.plugin import RunSettings, WriteSettings
from elspeth_testing.rows import RowsOrchestrator

SETTINGS = """\
name: check-test
datasource:
  plugin: csv
  options:
    path: data.csv
    id_column: id
orchestrator:
  plugin: {plugin}
  options:
    output: {output}
sinks: [jsonl]
"""
DATA = {"data.csv": "id,review\na,good\nb,bad\n"}


class AsyncChecking(RowsOrchestrator):
    """Checks on the event loop, as an orchestrator that looks something up over the network would."""

    name = "async_checking"
    checked: ClassVar[list[str]] = []

    async def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        checker = ctx.checker()
        if self.options.output in columns:
            checker.add((*ctx.options_loc, "output"), f"'{self.options.output}' is already a column of the data")
        checker.raise_if_any()
        AsyncChecking.checked.append(self.options.output)

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        assert AsyncChecking.checked, "run before check"
        result: RunResult = await super().run(table, ctx)
        return result


class SyncChecking(RowsOrchestrator):
    """A plain ``def check``: runs off the event loop, in a worker thread."""

    name = "sync_checking"
    threads: ClassVar[list[str]] = []

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        SyncChecking.threads.append(threading.current_thread().name)
        super().check(columns, ctx)


@hookimpl
def register_orchestrators(register: Any) -> None:
    register(AsyncChecking)
    register(SyncChecking)


@pytest.fixture
def registry() -> Any:
    AsyncChecking.checked = []
    SyncChecking.threads = []
    return build_registry(plugin_module("check_test_plugins", register_orchestrators))


def test_an_async_check_is_awaited_and_its_problems_name_the_place(
    write_settings: WriteSettings, registry: Any
) -> None:
    path = write_settings(SETTINGS.format(plugin="async_checking", output="review"), DATA)
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry))
    assert [str(p) for p in caught.value.problems] == [
        "orchestrator.options.output: 'review' is already a column of the data (settings.yaml:10)"
    ]
    assert AsyncChecking.checked == []
    assert not (path.parent / "output").exists()


def test_an_async_check_that_passes_runs_before_the_rows(
    write_settings: WriteSettings, run_settings: RunSettings, registry: Any
) -> None:
    path = write_settings(SETTINGS.format(plugin="async_checking", output="answer"), DATA)
    result = run_settings(path, registry)
    assert AsyncChecking.checked == ["answer"]
    assert [r.row_id for r in result.records] == ["a", "b"]
    assert (Path(path).parent / "output/results.jsonl").is_file()


def test_a_sync_check_runs_in_a_worker_thread(write_settings: WriteSettings, registry: Any) -> None:
    path = write_settings(SETTINGS.format(plugin="sync_checking", output="answer"), DATA)
    asyncio.run(prepare(load_settings(path), registry))
    (thread,) = SyncChecking.threads
    assert thread != threading.main_thread().name


class AsyncSetupAggregator:
    """Looks something up in ``setup``, wrongly written ``async def``."""

    name = "async_setup"
    Options = RowsOrchestrator.Options

    def __init__(self, options: Any) -> None:
        self.options = options

    async def setup(self, setup: Any) -> None:
        raise AssertionError("never called: an async setup is refused before it runs")

    def finalize(self, records: Sequence[Any]) -> dict[str, Any]:
        return {}


@hookimpl
def register_aggregators(register: Any) -> None:
    register(AsyncSetupAggregator)


EXPERIMENT_SETTINGS = """\
name: setup-test
datasource:
  plugin: csv
  options:
    path: data.csv
    id_column: id
llm: mock
prompts:
  user: "{{ review }}"
orchestrator:
  plugin: experiment
  options:
    aggregators:
      - score_stats
      - async_setup
sinks: [jsonl]
"""


def test_an_experiment_sub_plugin_with_async_setup_is_refused_at_its_place(write_settings: WriteSettings) -> None:
    registry = build_registry(
        PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
        plugin_module("async_setup_plugins", register_aggregators),
    )
    path = write_settings(EXPERIMENT_SETTINGS, DATA)
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry))
    assert [str(p) for p in caught.value.problems] == [
        "orchestrator.options.aggregators[1]: aggregator 'async_setup' (test-plugins) defines `async def setup`, "
        "but setup runs while the settings are checked and must be a plain `def`; move network work to its run "
        "methods, which may be async (settings.yaml:15)"
    ]
