"""Lifecycle hooks: ``run_started``, ``row_finished`` and ``run_finished`` observers see every run, never break it."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from elspeth import Failure, Record, RunResult, hookimpl
from elspeth.discovery import PluginSource
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

SETTINGS = """\
name: observed
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock, options: {failure_rate: 1.0}}
prompts: {user: "{{ text }}"}
orchestrator: rows
sinks: [{plugin: jsonl, options: {path: out.jsonl}}]
retry: {max_attempts: 1}
"""
NO_LLM = """\
name: observed
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
orchestrator: rows
sinks: [{plugin: jsonl, options: {path: out.jsonl}}]
"""
DATA = {"data.csv": "id,text\na,one\nb,two\nc,three\n"}


def observer(events: list[tuple[str, dict[str, Any]]], out: Path | None = None) -> ModuleType:
    @hookimpl
    def run_started(run_id: str, name: str, orchestrator: str, settings: Mapping[str, Any]) -> None:
        events.append(
            ("run_started", {"run_id": run_id, "name": name, "orchestrator": orchestrator, "settings": settings})
        )

    @hookimpl
    def row_finished(run_id: str, record: Record | None, failure: Failure | None) -> None:
        on_loop = threading.current_thread() is threading.main_thread()
        events.append(("row_finished", {"run_id": run_id, "record": record, "failure": failure, "on_loop": on_loop}))

    @hookimpl
    def run_finished(run_id: str, result: RunResult) -> None:
        written = out is not None and out.is_file()
        events.append(("run_finished", {"run_id": run_id, "result": result, "sinks_written": written}))

    return plugin_module("observer", run_started, row_finished, run_finished)


def test_run_started_row_finished_run_finished_fire_in_order_with_their_arguments(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    registry = make_registry(observer(events, tmp_path / "output" / "out.jsonl"))
    result = run_settings(write_settings(NO_LLM, DATA), registry)
    names = [name for name, _ in events]
    assert names == ["run_started", "row_finished", "row_finished", "row_finished", "run_finished"]
    run_id = result.metadata.run_id
    assert {args["run_id"] for _, args in events} == {run_id}

    started = events[0][1]
    assert (started["name"], started["orchestrator"]) == ("observed", "rows")
    assert started["settings"]["datasource"] == {
        "plugin": "csv",
        "options": {"path": "data.csv", "id_column": "id"},
        "security_level": None,
    }
    json.dumps(started["settings"])  # plain data, ready to log

    rows = [args for name, args in events if name == "row_finished"]
    assert sorted(args["record"].row_id for args in rows) == ["a", "b", "c"]
    assert all(args["failure"] is None for args in rows)
    assert all(args["on_loop"] for args in rows)

    finished = events[-1][1]
    assert finished["result"] is result
    assert finished["sinks_written"]  # observers hear of the end after every sink has written


def test_row_finished_hands_failures_with_no_record(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    result = run_settings(write_settings(SETTINGS, DATA), make_registry(observer(events)))
    rows = [args for name, args in events if name == "row_finished"]
    assert len(rows) == len(result.failures) == 3
    for args in rows:
        assert args["record"] is None
        assert args["failure"].stage == "llm"
        assert "mock failure" in args["failure"].error


def test_observers_may_take_fewer_arguments(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    seen: list[object] = []

    @hookimpl
    def run_finished(result: RunResult) -> None:
        seen.append(result.metadata.succeeded)

    @hookimpl
    def row_finished(record: Record | None) -> None:
        seen.append(record is not None)

    run_settings(write_settings(NO_LLM, DATA), make_registry(plugin_module("terse", run_finished, row_finished)))
    assert seen == [True, True, True, 3]


@pytest.mark.parametrize("hook_name", ["run_started", "row_finished", "run_finished"])
def test_an_observer_that_raises_becomes_a_warning_in_the_metadata(
    hook_name: str, write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    def explode(run_id: str) -> None:
        raise RuntimeError(f"{hook_name} observer bug")

    events: list[tuple[str, dict[str, Any]]] = []
    faulty = PluginSource("faulty", "elspeth-faulty", "0.1", plugin_module("faulty", **{hook_name: hookimpl(explode)}))
    result = run_settings(write_settings(NO_LLM, DATA), make_registry(faulty, observer(events)))
    assert [r.row_id for r in result.records] == ["a", "b", "c"]
    warnings = result.metadata.warnings
    assert result.metadata.to_dict()["warnings"] == warnings
    expected = f"{hook_name} observer elspeth-faulty:faulty raised RuntimeError: {hook_name} observer bug"
    assert expected in warnings
    assert [name for name, _ in events].count(hook_name) == (3 if hook_name == "row_finished" else 1)


def test_a_run_without_observer_problems_has_no_warnings(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    result = run_settings(write_settings(NO_LLM, DATA), make_registry())
    assert result.metadata.warnings == []
    assert "warnings" not in result.metadata.to_dict()
