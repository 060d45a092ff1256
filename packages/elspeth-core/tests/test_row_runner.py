"""The row runner: resume, processors, failures, commits, progress, cancellation, counts, written once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from elspeth import (
    Failure,
    OrchestrationContext,
    PluginContext,
    Record,
    Row,
    RowFailed,
    RowRunner,
    load_registry,
)
from elspeth.store import RunStore


class Bar:
    def __init__(self) -> None:
        self.started: list[tuple[int | None, str]] = []
        self.advanced: list[bool] = []
        self.finished = 0

    def start(self, total: int | None, description: str) -> None:
        self.started.append((total, description))

    def advance(self, ok: bool) -> None:
        self.advanced.append(ok)

    def finish(self) -> None:
        self.finished += 1


def context(tmp_path: Path, *, store: RunStore | None = None, processors: Any = (), concurrency: int = 4) -> Any:
    loaded: Any = None  # the runner reads no settings
    return OrchestrationContext(
        run_id="run-1",
        name="n",
        registry=load_registry(),
        loaded=loaded,
        llm=None,
        processors=list(processors),
        utilities=[],
        concurrency=concurrency,
        plugin_context=PluginContext(run_id="run-1", name="n", base_dir=tmp_path, output_dir=tmp_path),
        progress=Bar(),
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


def rows(n: int) -> list[Row]:
    return [Row(f"r{i}", {"n": i}, 100 + i) for i in range(n)]  # indexes the runner renumbers 0, 1, 2, ...


async def slow_or_failing(row: Row, ctx: OrchestrationContext) -> Record:
    await asyncio.sleep(0.001 * (7 - row.data["n"] % 7))  # later rows finish first
    if row.data["n"] % 3 == 0:
        raise RowFailed("parse", f"row {row.id} is no good", {"reply": "?"}, metrics={"cost": 0.5})
    return Record(row.id, row.data, {"double": row.data["n"] * 2})


def test_records_and_failures_in_input_order_with_counts_and_progress(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    runner = RowRunner(ctx, slow_or_failing, description="mine")
    counts = asyncio.run(runner.run(rows(12)))
    assert [r.row_id for r in runner.records] == [f"r{i}" for i in range(12) if i % 3]
    assert [f.row_id for f in runner.failures] == ["r0", "r3", "r6", "r9"]
    failure = runner.failures[1]
    assert (failure.stage, failure.error, failure.output, failure.metrics) == (
        "parse",
        "row r3 is no good",
        {"reply": "?"},
        {"cost": 0.5},
    )
    assert failure.attempts == [{"attempt": 1, "stage": "parse", "error": "row r3 is no good"}]
    assert (counts.started, counts.succeeded, counts.failed, counts.resumed, counts.not_run) == (12, 8, 4, 0, 0)
    assert ctx.progress.started == [(12, "mine")]
    assert ctx.progress.finished == 1
    assert sorted(ctx.progress.advanced) == [False] * 4 + [True] * 8
    meta = counts.metadata(ctx, "mine", {"k": 1})
    assert (meta.rows, meta.succeeded, meta.failed, meta.status, meta.extra) == (12, 8, 4, "completed", {"k": 1})


class Mask:
    def process(self, data: Any) -> Any:
        return {**data, "email": "[EMAIL]"}


class Boom:
    def process(self, data: Any) -> Any:
        raise ValueError("no")


def test_a_processor_failure_is_recorded_with_the_row_as_the_processors_left_it(tmp_path: Path) -> None:
    ctx = context(tmp_path, processors=[("mask", Mask()), ("boom", Boom())])

    async def work(row: Row, ctx: OrchestrationContext) -> Record:
        raise AssertionError("work runs only on a processed row")

    runner = RowRunner(ctx, work, group="g")
    asyncio.run(runner.run([Row("a", {"email": "ann@example.org"}, 0)]))
    (failure,) = runner.failures
    assert (failure.stage, failure.inputs, failure.group) == ("processor", {"email": "[EMAIL]"}, "g")
    assert failure.error == "ValueError: no"


def test_work_gets_the_processed_row_and_a_failure_keeps_it(tmp_path: Path) -> None:
    ctx = context(tmp_path, processors=[("mask", Mask())])

    async def work(row: Row, ctx: OrchestrationContext) -> Record:
        raise RowFailed("render", f"saw {row.data['email']}")

    runner = RowRunner(ctx, work)
    asyncio.run(runner.run([Row("a", {"email": "ann@example.org"}, 0)]))
    assert [(f.inputs, f.error) for f in runner.failures] == [({"email": "[EMAIL]"}, "saw [EMAIL]")]


def test_a_row_is_committed_before_its_worker_takes_another(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    ctx = context(tmp_path, store=store, concurrency=8)
    seen: list[str] = []

    def after(row: Row, item: Record | Failure) -> None:
        # called in the row's own worker, before it takes the next row
        assert item.row_id in committed(tmp_path / "elspeth-runs.sqlite")
        seen.append(item.row_id)

    asyncio.run(RowRunner(ctx, slow_or_failing, after=after).run(rows(40)))
    store.close()
    assert sorted(seen) == sorted(f"r{i}" for i in range(40))


def test_resumed_rows_are_taken_over_not_run(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.prior = {
        ("g", "r1"): Record("r1", {"n": 1}, {"double": "before"}, group="g"),
        ("g", "r3"): Failure("r3", {}, "llm", "x", group="g"),
    }
    ran: list[str] = []
    after: list[str] = []

    async def work(row: Row, ctx: OrchestrationContext) -> Record:
        ran.append(row.id)
        return Record(row.id, row.data)

    runner = RowRunner(ctx, work, group="g", after=lambda row, item: after.append(item.row_id))
    counts = asyncio.run(runner.run(rows(5)))
    assert sorted(ran) == ["r0", "r2", "r4"]
    assert sorted(after) == ["r0", "r1", "r2", "r3", "r4"], "the early-stop point sees resumed rows too"
    assert (counts.started, counts.succeeded, counts.failed, counts.resumed) == (5, 4, 1, 2)
    assert runner.records[1].outputs == {"double": "before"}
    assert all(r.group == "g" for r in runner.records)
    assert len(ctx.progress.advanced) == 5
    assert RowRunner(context(tmp_path), work, resume=False).ctx.prior == {}


async def generated(n: int) -> AsyncIterator[Row]:
    for row in rows(n):
        yield row


@pytest.mark.parametrize("source", ["list", "generator"])
def test_a_stop_takes_no_more_rows_and_counts_those_not_run(tmp_path: Path, source: str) -> None:
    store = open_store(tmp_path)
    ctx = context(tmp_path, store=store, concurrency=1)

    def after(row: Row, item: Record | Failure) -> None:
        if row.index == 2:
            ctx.cancel.set("budget reached")

    runner = RowRunner(ctx, slow_or_failing, after=after, count_rows=True)
    counts = asyncio.run(runner.run(rows(10) if source == "list" else generated(10)))
    assert (counts.started, counts.not_run) == (3, 7)
    assert counts.metadata(ctx, "o").status == "stopped"
    assert store.runs()[0]["rows_total"] == 10, "the input's size reaches the run store for `runs list`"
    store.close()


def test_a_plain_def_runs_inline_without_a_task_per_row(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    tasks: set[Any] = set()

    def work(row: Row, ctx: OrchestrationContext) -> Record:
        tasks.add(asyncio.current_task())
        if row.data["n"] == 1:
            raise RowFailed("validation:x", "bad")
        return Record(row.id, row.data)

    counts = asyncio.run(RowRunner(ctx, work).run(rows(50)))
    assert len(tasks) == 1
    assert (counts.succeeded, counts.failed) == (49, 1)


def test_an_unexpected_error_stops_the_run_and_its_position_is_released(tmp_path: Path) -> None:
    ctx = context(tmp_path, concurrency=2)
    kept: dict[int, Any] = {}

    async def work(row: Row, ctx: OrchestrationContext) -> Record:
        if row.id == "r2":
            raise KeyError("a bug")
        await asyncio.sleep(0)
        return Record(row.id, row.data)

    runner = RowRunner(ctx, work, keep=lambda i, item: kept.__setitem__(i, item))
    with pytest.raises(KeyError, match="a bug"):
        asyncio.run(runner.run(rows(20)))
    assert kept[2] is None, "a SpoolWriter waiting for position 2 is released"
    assert len(kept) < 20


def test_from_call_keeps_every_attempt_of_a_failed_call() -> None:
    class CallFailed(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.attempts = [{"attempt": 1, "error": "429"}, {"attempt": 2, "error": "timeout"}]

    failed = RowFailed.from_call(CallFailed("gave up"), criterion="tone")
    assert (failed.stage, failed.error) == ("llm", "CallFailed: gave up")
    assert failed.attempts == [
        {"attempt": 1, "error": "429", "criterion": "tone", "stage": "llm"},
        {"attempt": 2, "error": "timeout", "criterion": "tone", "stage": "llm"},
    ]
    assert RowFailed.from_call(ValueError("x")).attempts == [{"attempt": 1, "error": "ValueError: x", "stage": "llm"}]
