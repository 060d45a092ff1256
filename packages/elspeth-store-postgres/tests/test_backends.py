"""The store's scenarios, each against both backends: core's SQLite file and a real PostgreSQL server.

The same operations must mean the same thing in both (resume, the totals over attempts, a failure
replaced by ``--retry-errors`` lying past the mark a resume read at), so each test is parametrized
over the two and asserts one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from elspeth import Failure, Record, RunStore, StoreError
from elspeth.resume import PriorRows
from elspeth_store_postgres import PostgresRunStore

Opener = Callable[..., RunStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Open (again and again) one store of the parametrized backend: ``open_store()``, ``open_store(create=False)``."""
    opened: list[RunStore] = []
    if request.param == "sqlite":
        path = tmp_path / "elspeth-runs.sqlite"

        def opener(create: bool = True) -> RunStore:
            opened.append(RunStore.open(path, create=create))
            return opened[-1]
    else:
        url = request.getfixturevalue("postgres_url")

        def opener(create: bool = True) -> RunStore:
            opened.append(PostgresRunStore.open_url(url, create=create))
            return opened[-1]

    yield opener
    for store in opened:
        store.close()


def begin(store: RunStore, run_id: str = "run-1") -> None:
    store.begin_run(
        run_id,
        name="n",
        orchestrator="experiment",
        settings={"name": "n", "nested": {"k": [1, 2]}},
        settings_hash="0" * 64,
        settings_path="settings.yaml",
        plugins=[{"domain": "llm_client", "name": "mock", "version": "0.1.0"}],
    )


def record(row_id: str, cost: float = 0.25, group: str = "a") -> Record:
    metrics = {"cost": cost, "prompt_tokens": 10, "completion_tokens": 5}
    inputs = {"id": row_id, "text": "é ✓"}
    return Record(row_id=row_id, inputs=inputs, outputs={"r": "ok"}, metrics=metrics, group=group)


def failure(row_id: str, group: str = "a") -> Failure:
    return Failure(row_id, {"id": row_id}, "llm", "boom", [{"attempt": 1, "error": "boom"}], group=group)


def test_a_run_is_kept_with_its_settings_plugins_counts_and_end(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.set_total("run-1", 4)
    store.commit_rows("run-1", [(record("r1"), None), (None, failure("r2"))])
    store.commit_row("run-1", record("r3"), None)
    run = store.run("run-1")
    assert (run["status"], run["done"], run["failed"], run["pending"], run["attempts"]) == ("running", 2, 1, 1, 1)
    assert run["settings"] == {"name": "n", "nested": {"k": [1, 2]}}
    assert run["plugins"] == [{"domain": "llm_client", "name": "mock", "version": "0.1.0"}]
    store.finish_run("run-1", "completed", {"succeeded": 2})
    again = open_store(create=False).run("run-1")
    assert (again["status"], again["metadata"], again["totals"]["cost"]) == ("completed", {"succeeded": 2}, 0.5)
    assert again["finished_at"] is not None
    assert [r["run_id"] for r in store.runs()] == ["run-1"]


def test_finished_rows_come_back_as_they_were_committed(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.commit_rows("run-1", [(record("r1"), None), (None, failure("r2")), (record("r1", group="b"), None)])
    rows = open_store().finished_rows("run-1")
    assert rows == {("a", "r1"): record("r1"), ("a", "r2"): failure("r2"), ("b", "r1"): record("r1", group="b")}


def test_the_totals_count_a_killed_attempt_from_its_rows_and_then_every_attempt(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.commit_row("run-1", record("r1", cost=0.5), None)
    store.commit_row("run-1", record("r2", cost=0.25), None)
    store.close()  # killed: the attempt never finished

    store = open_store(create=False)
    assert store.totals("run-1").cost == 0.75
    begin(store)  # the resume folds the killed attempt in
    assert store.totals("run-1").cost == 0.75
    assert store.attempt_totals("run-1").cost == 0
    store.commit_row("run-1", record("r3", cost=1.0), None)
    assert store.attempt_totals("run-1").cost == 1.0
    assert store.totals("run-1").cost == 1.75
    assert store.totals("run-1").prompt_tokens == 30
    assert store.run("run-1")["attempts"] == 2


def test_a_retried_failure_lies_past_the_mark_a_resume_read_at(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.commit_rows("run-1", [(record("r1"), None), (None, failure("r2"))])
    prior = PriorRows(store, "run-1")
    records_only = PriorRows(store, "run-1", records_only=True)
    assert (len(prior), len(records_only)) == (2, 1)
    assert sorted(prior) == [("a", "r1"), ("a", "r2")]
    store.commit_row("run-1", record("r2"), None)  # --retry-errors replaced the failure
    store.commit_row("run-1", record("r9"), None)
    assert prior.get(("a", "r2")) is None  # rewritten after the mark: not a row the resume began with
    assert prior.get(("a", "r9")) is None
    assert prior[("a", "r1")] == record("r1")
    assert sorted(prior) == [("a", "r1")]
    assert store.finished_rows("run-1")[("a", "r2")] == record("r2")  # one row, the later
    assert store.run("run-1")["done"] == 3


def test_more_rows_than_one_statement_holds_commit_together(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.commit_rows("run-1", [(record(f"r{i:04d}", cost=0.001), None) for i in range(1000)])
    assert store.run("run-1")["done"] == 1000
    assert abs(open_store().totals("run-1").cost - 1.0) < 1e-9


def test_an_unknown_run_is_refused_naming_the_store_and_the_recent_runs(open_store: Opener) -> None:
    store = open_store()
    with pytest.raises(StoreError, match="The store has no runs"):
        store.run("nope")
    begin(store, "run-7")
    with pytest.raises(StoreError, match=r"no run 'nope' in .* Recent runs: run-7"):
        store.run("nope")


def test_a_writer_joins_a_running_attempt_and_stamps_its_rows_with_it(open_store: Opener) -> None:
    client = open_store()
    begin(client)
    client.close()
    client = open_store()
    begin(client)  # attempt 2
    worker = open_store()
    worker.join_run("run-1")
    worker.commit_row("run-1", record("w1", cost=2.0), None)
    reader = open_store()
    assert reader.attempt_totals("run-1").cost == 2.0  # counted from the rows: the worker's is attempt 2's
    client.finish_run("run-1", "completed", {})
    with pytest.raises(StoreError, match=r"cannot join run run-1 .*completed, not running"):
        open_store().join_run("run-1")
    with pytest.raises(StoreError, match=r"cannot join run run-9 .*not in it"):
        worker.join_run("run-9")


def test_opening_without_create_refuses_an_empty_store(open_store: Opener) -> None:
    with pytest.raises(StoreError, match="no run store at"):
        open_store(create=False)


def test_a_row_given_twice_in_one_commit_is_kept_once_the_later(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    store.commit_rows("run-1", [(None, failure("r1")), (record("r2"), None), (record("r1"), None)])
    rows = open_store().finished_rows("run-1")
    assert rows == {("a", "r1"): record("r1"), ("a", "r2"): record("r2")}


def test_a_runs_batches_are_kept_in_order_across_a_reopen(open_store: Opener) -> None:
    store = open_store()
    begin(store)
    journal = store.batch_journal("run-1")
    journal.planned("run-1/0", ["a", "b"])
    journal.planned("run-1/1", ["c"])
    journal.submitted("run-1/0", "batch_9")
    journal.collected("run-1/0")
    store.batch_journal("run-2").planned("run-2/0", ["z"])

    again = open_store(create=False).batch_journal("run-1").entries()
    assert [(e.tag, e.custom_ids, e.batch_id, e.collected) for e in again] == [
        ("run-1/0", ["a", "b"], "batch_9", True),
        ("run-1/1", ["c"], None, False),
    ]
    with pytest.raises(StoreError, match="recording a batch of run run-1"):
        journal.planned("run-1/1", ["c"])  # a tag is planned once
