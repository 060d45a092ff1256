"""``ctx.commit_row``: the rows finishing in one turn of the event loop share one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elspeth import OrchestrationContext, PluginContext, Record, load_registry
from elspeth.store import RunStore, StoreError


def context(tmp_path: Path, store: RunStore | None) -> OrchestrationContext:
    plugin_context = PluginContext(run_id="run-1", name="n", base_dir=tmp_path, output_dir=tmp_path)
    loaded: Any = None  # commit_row reads no settings
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


def test_rows_finishing_together_share_one_transaction_and_each_is_in_the_store_when_its_caller_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    ctx = context(tmp_path, store)
    batches: list[int] = []
    real = store.rows_finished

    def counting(run_id: str, rows: Any) -> None:
        batches.append(len(rows))
        real(run_id, rows)

    monkeypatch.setattr(store, "rows_finished", counting)
    seen_after: dict[str, bool] = {}

    async def worker(i: int) -> None:
        await asyncio.sleep(0.01 if i >= 40 else 0)  # 40 finish in one turn, 10 in a later one
        await ctx.commit_row(record=Record(f"r{i}", {"i": i}))
        seen_after[f"r{i}"] = f"r{i}" in committed(store.path)

    async def main() -> None:
        await asyncio.gather(*(worker(i) for i in range(50)))

    asyncio.run(main())
    store.close()
    assert sum(batches) == 50
    assert batches[0] == 40  # not one transaction per row
    assert len(batches) <= 3
    assert len(seen_after) == 50
    assert all(seen_after.values())


def test_a_store_that_cannot_be_written_fails_every_row_of_the_transaction(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ctx = context(tmp_path, store)
    store._conn.execute("DROP TABLE rows")  # a damaged store

    async def main() -> list[BaseException | None]:
        results = await asyncio.gather(
            *(ctx.commit_row(record=Record(f"r{i}", {})) for i in range(3)), return_exceptions=True
        )
        return list(results)

    errors = asyncio.run(main())
    store.close()
    assert all(isinstance(e, StoreError) for e in errors), errors
    assert "elspeth-runs.sqlite" in str(errors[0])


def test_without_a_store_rows_are_only_reported(tmp_path: Path) -> None:
    ctx = context(tmp_path, None)
    asyncio.run(ctx.commit_row(record=Record("r1", {})))  # nothing to commit, nothing raised
