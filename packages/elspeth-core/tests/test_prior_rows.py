"""A resumed run reads the rows finished before it from the store, one at a time, as they were when it began."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from elspeth import Failure, Record
from elspeth.resume import PriorRows
from elspeth.store import RunStore


def store_with_rows(tmp_path: Path) -> RunStore:
    store = RunStore.open(tmp_path / "elspeth-runs.sqlite")
    store.begin_run(
        "run-1", name="n", orchestrator="o", settings={}, settings_hash="0" * 64, settings_path=None, plugins=[]
    )
    store.commit_rows(
        "run-1",
        [
            (Record("r1", {"q": "one"}, {"a": "1"}, {"cost": 0.5}, group="g"), None),
            (None, Failure("r2", {"q": "two"}, "llm", "boom", [{"attempt": 1, "error": "boom"}], group="g")),
            (Record("r3", {"q": "three"}, {"a": "3"}, group="h"), None),
        ],
    )
    return store


def test_rows_are_found_by_group_and_id_with_what_they_held(tmp_path: Path) -> None:
    store = store_with_rows(tmp_path)
    prior = PriorRows(store, "run-1")
    assert len(prior) == 3
    assert bool(prior)
    assert prior.get(("g", "r1")) == Record("r1", {"q": "one"}, {"a": "1"}, {"cost": 0.5}, group="g")
    assert prior[("g", "r2")] == Failure(
        "r2", {"q": "two"}, "llm", "boom", [{"attempt": 1, "error": "boom"}], group="g"
    )
    assert prior.get(("h", "r1")) is None  # the same id in another group is another row
    assert ("g", "r9") not in prior
    assert sorted(prior) == [("g", "r1"), ("g", "r2"), ("h", "r3")]
    store.close()


def test_retry_errors_leaves_the_failures_out(tmp_path: Path) -> None:
    store = store_with_rows(tmp_path)
    prior = PriorRows(store, "run-1", records_only=True)
    assert len(prior) == 2
    assert prior.get(("g", "r2")) is None
    assert sorted(prior) == [("g", "r1"), ("h", "r3")]
    store.close()


def test_rows_the_resumed_run_commits_itself_are_not_prior_rows(tmp_path: Path) -> None:
    store = store_with_rows(tmp_path)
    prior = PriorRows(store, "run-1", records_only=True)
    store.commit_row("run-1", Record("r4", {}, group="g"), None)  # finished by this attempt
    store.commit_row("run-1", Record("r2", {}, {"a": "2"}, group="g"), None)  # the failure, retried
    assert prior.get(("g", "r4")) is None
    assert prior.get(("g", "r2")) is None
    assert len(prior) == 2
    assert sorted(prior) == [("g", "r1"), ("h", "r3")]
    store.close()


def test_another_run_in_the_same_store_is_not_mixed_in(tmp_path: Path) -> None:
    store = store_with_rows(tmp_path)
    store.begin_run(
        "run-2", name="n", orchestrator="o", settings={}, settings_hash="0" * 64, settings_path=None, plugins=[]
    )
    store.commit_row("run-2", Record("r1", {}, group="g"), None)
    prior = PriorRows(store, "run-2")
    assert len(prior) == 1
    assert prior[("g", "r1")].inputs == {}
    store.close()


def test_memory_does_not_grow_with_the_rows_finished_before(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "elspeth-runs.sqlite")
    store.begin_run(
        "big", name="n", orchestrator="o", settings={}, settings_hash="0" * 64, settings_path=None, plugins=[]
    )
    text = "x" * 200
    for start in range(0, 50_000, 1_000):
        store.commit_rows("big", [(Record(f"r{i}", {"text": text}), None) for i in range(start, start + 1_000)])
    tracemalloc.start()
    prior = PriorRows(store, "big")
    assert len(prior) == 50_000
    assert prior[("", "r49999")].inputs == {"text": text}
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000  # the 50,000 rows hold over 10 MB of text: none of it is loaded
    store.close()
