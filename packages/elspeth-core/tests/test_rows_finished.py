"""How finished rows reach the run store.

``ctx.commit_rows`` commits one row or a group in one
transaction; ``await ctx.commit_row`` commits the rows of one turn of the event loop together, before
any of their workers goes on.
"""

from __future__ import annotations

import asyncio
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
    ctx.commit_rows([(Record("r1", {}), None)])
    assert committed(store.path) == {"r1"}
    ctx.commit_rows([(None, Failure("r2", {}, "llm", "boom"))])
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
    ctx.commit_rows(rows)
    store._conn.set_trace_callback(None)
    assert committed(store.path) == {f"r{i}" for i in range(50)} | {"bad"}
    assert len([s for s in statements if s.startswith("INSERT")]) == 1  # one statement, its own transaction
    assert bar.advanced == [True] * 50 + [False]
    store.close()


def test_no_rows_write_nothing(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    ctx.commit_rows([])
    store.write_rows([])
    assert committed(store.path) == set()
    assert bar.advanced == []
    store.close()


def test_a_group_too_big_for_one_statement_is_still_one_transaction(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    ctx.commit_rows([(Record(f"r{i}", {"i": i}), None) for i in range(512)])
    store._conn.set_trace_callback(None)
    assert committed(store.path) == {f"r{i}" for i in range(512)}
    assert [s for s in statements if s in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]
    assert len([s for s in statements if s.startswith("INSERT")]) == 5  # 124 rows a statement at most (8 values each)
    rows = store.finished_rows("run-1")
    assert rows[("", "r511")] == Record("r511", {"i": 511})  # every value landed in its own row
    store.close()


def test_rows_of_one_turn_are_committed_together_before_any_worker_goes_on(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    statements: list[str] = []
    seen_after: dict[str, set[str]] = {}

    async def worker(name: str) -> None:
        await ctx.commit_row(record=Record(name, {"who": name}, outputs={"answer": name.upper()}))
        seen_after[name] = committed(store.path)  # what another process would see as the worker goes on

    async def main() -> None:
        store._conn.set_trace_callback(statements.append)
        await asyncio.gather(*(worker(f"r{i}") for i in range(20)))
        store._conn.set_trace_callback(None)

    asyncio.run(main())
    every = {f"r{i}" for i in range(20)}
    assert all(seen == every for seen in seen_after.values())
    assert len([s for s in statements if s.startswith("INSERT")]) == 1
    assert bar.advanced == [True] * 20
    assert store.finished_rows("run-1")[("", "r7")].outputs == {"answer": "R7"}
    store.close()


def test_rows_of_later_turns_are_later_transactions(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    statements: list[str] = []

    async def worker(i: int) -> None:
        for _ in range(i):  # worker i finishes in turn i
            await asyncio.sleep(0)
        await ctx.commit_row(failure=Failure(f"r{i}", {}, "llm", "boom"))

    async def main() -> None:
        store._conn.set_trace_callback(statements.append)
        await asyncio.gather(*(worker(i) for i in range(3)))
        store._conn.set_trace_callback(None)

    asyncio.run(main())
    assert len([s for s in statements if s.startswith("INSERT")]) == 3
    assert committed(store.path) == {"r0", "r1", "r2"}
    assert bar.advanced == [False] * 3
    store.close()


def test_a_failed_group_commit_fails_each_of_its_rows_and_reports_none(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    store._conn.execute("DROP TABLE rows")  # a damaged store

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(
            *(ctx.commit_row(record=Record(f"r{i}", {})) for i in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(main())
    assert all(isinstance(o, StoreError) and "elspeth-runs.sqlite" in str(o) for o in outcomes)
    assert "row r0 and 2 more of run run-1" in str(outcomes[0])
    assert bar.advanced == []
    store.close()


def test_commit_pending_commits_rows_whose_workers_were_cancelled(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)

    statements: list[str] = []

    async def main() -> None:
        task = asyncio.ensure_future(ctx.commit_row(record=Record("r1", {})))
        await asyncio.sleep(0)  # the task handed its row in; its commit is due next turn
        assert committed(store.path) == set()
        store._conn.set_trace_callback(statements.append)
        ctx.commit_pending()  # the run ends first (a second Ctrl-C)
        assert committed(store.path) == {"r1"}
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store._conn.set_trace_callback(None)

    asyncio.run(main())
    assert len([s for s in statements if s.startswith("INSERT")]) == 1  # the turn's own commit found it done
    store.close()


def test_a_store_that_cannot_be_written_says_which_file_and_reports_nothing(tmp_path: Path) -> None:
    store, bar = open_store(tmp_path), Bar()
    ctx = context(tmp_path, store, bar)
    store._conn.execute("DROP TABLE rows")  # a damaged store
    with pytest.raises(StoreError, match=r"elspeth-runs\.sqlite"):
        ctx.commit_rows([(Record("r1", {}), None), (Record("r2", {}), None)])
    assert bar.advanced == []  # a row that is not in the store is not counted as done
    store.close()


def test_without_a_store_rows_are_only_reported(tmp_path: Path) -> None:
    bar = Bar()
    ctx = context(tmp_path, None, bar)
    ctx.commit_rows([(Record("r1", {}), None)])
    ctx.commit_rows([(Record("r2", {}), None)])
    asyncio.run(ctx.commit_row(failure=Failure("r3", {}, "llm", "boom")))
    assert bar.advanced == [True, True, False]
