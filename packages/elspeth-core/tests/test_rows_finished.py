"""``ctx.row_finished`` commits one row before it returns; ``ctx.rows_finished`` commits a group in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elspeth import Failure, OrchestrationContext, PluginContext, Record, load_registry
from elspeth.store import RunStore, StoreError


class Bar:
    def __init__(self) -> None:
        self.advanced: list[bool] = []

    def start(self, total: int | None, description: str) -> None: ...

    def advance(self, ok: bool) -> None:
        self.advanced.append(ok)

    def finish(self) -> None: ...


def context(tmp_path: Path, store: RunStore | None, bar: Bar) -> OrchestrationContext:
    plugin_context = PluginContext(run_id="run-1", name="n", base_dir=tmp_path, output_dir=tmp_path)
    loaded: Any = None  # committing rows reads no settings
    return OrchestrationContext(
        run_id="run-1",
        name="n",
        registry=load_registry(),
        loaded=loaded,
        llm=None,
        processors=[],
        utilities=[],
        concurrency=8,
        plugin_context=plugin_context,
        progress=bar,
        store=store,
    )


def open_store(tmp_path: Path) -> RunStore:
    store = RunStore.open(tmp_path / "elspeth-runs.sqlite")
    store.begin_run(
        "run-1", name="n", orchestrator="o", settings={}, settings_hash="0" * 64, settings_path=None, plugins=[]
    )
    return store


def committed(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:  # another connection: sees only what was committed
        return {row_id for (row_id,) in conn.execute("SELECT row_id FROM rows WHERE run_id='run-1'")}


def test_a_row_is_committed_before_row_finished_returns(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    ctx.row_finished(record=Record("r1", {}))
    assert committed(store.path) == {"r1"}
    ctx.row_finished(failure=Failure("r2", {}, "llm", "boom"))
    assert committed(store.path) == {"r1", "r2"}
    assert bar.advanced == [True, False]
    store.close()


def test_a_group_is_one_transaction_and_each_row_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    rows: list[tuple[Record | None, Failure | None]] = [(Record(f"r{i}", {}), None) for i in range(50)]
    rows.append((None, Failure("bad", {}, "validation:range", "out of range")))
    ctx.rows_finished(rows)
    store._conn.set_trace_callback(None)
    assert committed(store.path) == {f"r{i}" for i in range(50)} | {"bad"}
    assert [s for s in statements if s in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]  # not one per row
    assert bar.advanced == [True] * 50 + [False]
    store.close()


def test_a_store_that_cannot_be_written_says_which_file_and_reports_nothing(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    store._conn.execute("DROP TABLE rows")  # a damaged store
    with pytest.raises(StoreError, match=r"elspeth-runs\.sqlite"):
        ctx.rows_finished([(Record("r1", {}), None), (Record("r2", {}), None)])
    assert bar.advanced == []  # a row that is not in the store is not counted as done
    store.close()


def test_without_a_store_rows_are_only_reported(tmp_path: Path) -> None:
    bar = Bar()
    ctx = context(tmp_path, None, bar)
    ctx.rows_finished([(Record("r1", {}), None)])
    ctx.row_finished(record=Record("r2", {}))
    assert bar.advanced == [True, True]
