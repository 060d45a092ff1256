"""The batch orchestrator and the run store: each row committed as it finishes, and the run's size in history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from elspeth import Failure, Record, RunResult, engine, hookimpl
from elspeth.config import load_settings
from elspeth.registry import Registry
from elspeth.store import RunStore
from elspeth_testing import plugin_module
from elspeth_testing.plugin import RunSettings, WriteSettings

RegistryWith = Callable[..., Registry]


def settings(orchestrator: dict[str, Any] | None = None, **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "batch-store-test",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
        "llm": {"plugin": "scripted", "options": {}},
        "prompts": {"user": "{{ product }}: {{ review }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "batch", "options": orchestrator or {}},
        "sinks": [{"plugin": "jsonl", "options": {"path": "results.jsonl"}}],
    }
    doc.update(top)
    return json.dumps(doc, indent=2)


Seen = Callable[[RunStore, str, Record | Failure], None]
"""Called with the run store (opened afresh, as another process reads it), the run id and the row just reported."""
WatchedRun = Callable[[str, str | None, Seen], tuple[RunResult, dict[str, Any]]]


def watcher(store_path: Path, seen: Seen) -> ModuleType:
    """A ``row_finished`` observer that hands ``seen`` the run store, read as another process would.

    An observer's exception is only logged, never raised: ``seen`` records what it saw, the test asserts on it.
    """

    @hookimpl
    def row_finished(run_id: str, record: Record | None, failure: Failure | None) -> None:
        item = record if record is not None else failure
        store = RunStore.open(store_path, create=False)
        try:
            if item is not None:
                seen(store, run_id, item)
        finally:
            store.close()

    return plugin_module("store_watcher", row_finished)


@pytest.fixture
def watched_run(
    tmp_path: Path, write_settings: WriteSettings, run_settings: RunSettings, registry_with: RegistryWith
) -> WatchedRun:
    """``watched_run(settings, csv, seen)``: run with ``seen`` watching each row; the result, and the run in history."""
    store_path = tmp_path / "output" / "elspeth-runs.sqlite"

    def go(text: str, data: str | None, seen: Seen) -> tuple[RunResult, dict[str, Any]]:
        path = write_settings(text, {"data.csv": data} if data is not None else {})
        result = run_settings(path, registry_with(watcher(store_path, seen)))
        store = RunStore.open(store_path, create=False)
        try:
            return result, store.run(result.metadata.run_id)
        finally:
            store.close()

    return go


def test_each_row_is_committed_as_it_finishes_even_while_the_reorder_buffer_holds_it_back(
    watched_run: WatchedRun, reviews_csv: Any
) -> None:
    # r0000 is slow: rows 1-7 finish inside the reorder window of 8, and the three other workers each
    # finish one more row (8, 9, 10) that must wait to be output; all of them must already be in the store
    committed_when_first_finished: set[str] = set()

    def seen(store: RunStore, run_id: str, item: Record | Failure) -> None:
        if item.row_id == "r0000":
            committed_when_first_finished.update(row_id for _, row_id in store.finished_rows(run_id))

    llm = {"plugin": "scripted", "options": {"slow_rows": {"r0000": 400}}}
    result, run = watched_run(settings({"reorder_window": 8}, llm=llm, concurrency=4), reviews_csv(40), seen)
    assert committed_when_first_finished == {f"r{i:04d}" for i in range(11)}
    assert [r.row_id for r in result.records] == [f"r{i:04d}" for i in range(40)], "the output keeps input order"
    assert result.metadata.extra["reorder_buffer_peak"] <= 8
    assert (run["done"], run["failed"], run["pending"]) == (40, 0, 0)


def test_history_knows_a_csv_runs_size_before_the_first_row_finishes(watched_run: WatchedRun, reviews_csv: Any) -> None:
    pending: list[int | None] = []

    def seen(store: RunStore, run_id: str, item: Record | Failure) -> None:
        pending.append(store.run(run_id)["pending"])

    llm = {"plugin": "scripted", "options": {"fail_rows": ["r0003"]}}
    _, run = watched_run(settings(llm=llm, concurrency=1), reviews_csv(12), seen)
    assert pending == list(range(11, -1, -1)), "a failed row is finished too: it is not pending"
    assert (run["rows_total"], run["done"], run["failed"], run["pending"]) == (12, 11, 1, 0)


def test_a_datasource_that_cannot_count_its_rows_reports_them_once_read_to_the_end(watched_run: WatchedRun) -> None:
    pending: list[int | None] = []

    def seen(store: RunStore, run_id: str, item: Record | Failure) -> None:
        pending.append(store.run(run_id)["pending"])

    generated = {"plugin": "generated", "options": {"rows": 40}}
    _, run = watched_run(settings(datasource=generated, concurrency=2), None, seen)
    assert pending[0] is None, "unknown while the datasource is still being read"
    assert pending[-1] == 0
    assert (run["rows_total"], run["done"], run["pending"]) == (40, 40, 0)


def test_a_budget_stop_counts_the_rows_never_started_as_pending(watched_run: WatchedRun) -> None:
    cost = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1e6, "output": 0}}, "budget": 50}}
    generated = {"plugin": "generated", "options": {"rows": 200}}
    result, run = watched_run(settings(datasource=generated, cost_tracker=cost, concurrency=2), None, lambda *_: None)
    assert result.metadata.status == "stopped"
    not_run = result.metadata.extra["not_run"]
    assert not_run > 0
    assert (run["rows_total"], run["pending"]) == (200, not_run)


class RecordingProgress:
    """Progress that remembers each phase's total and how many rows advanced."""

    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.advanced = 0

    def start(self, total: int | None, description: str) -> None:
        self.totals.append(total)

    def advance(self, ok: bool) -> None:
        self.advanced += 1

    def finish(self) -> None:
        pass


def test_the_progress_bar_knows_the_size_only_when_the_datasource_can_count(
    write_settings: WriteSettings, registry_with: RegistryWith, reviews_csv: Any
) -> None:
    for datasource, data, expected in [
        ({"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}}, reviews_csv(7), 7),
        ({"plugin": "generated", "options": {"rows": 7}}, None, None),
    ]:
        progress = RecordingProgress()
        path = write_settings(settings(datasource=datasource), {"data.csv": data} if data is not None else {})
        engine.run_settings(load_settings(path), registry_with(), progress=progress)
        assert (progress.totals, progress.advanced) == ([expected], 7)
