"""Several writers (a cluster's partitions) commit to one run concurrently, each on its own connection."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from elspeth import Record, StoreError
from elspeth_store_postgres import PostgresRunStore

WRITERS, ROWS = 4, 250


def record(row_id: str, cost: float = 0.01) -> Record:
    return Record(row_id=row_id, inputs={"id": row_id}, outputs={"r": row_id}, metrics={"cost": cost}, group="g")


def begin(store: PostgresRunStore) -> None:
    store.begin_run(
        "run-1", name="n", orchestrator="batch", settings={}, settings_hash="0" * 64, settings_path=None, plugins=[]
    )


PARTITION = """
import sys, time
from pathlib import Path
from elspeth import Record
from elspeth_store_postgres import PostgresRunStore

url, index, rows, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
store = PostgresRunStore.open_url(url)
store.join_run("run-1")
while not go.exists():  # every writer is connected before any commits
    time.sleep(0.01)
for i in range(rows):
    row_id = f"p{index}-{i:04d}"
    store.commit_row("run-1", Record(row_id, {"id": row_id}, {"r": row_id}, {"cost": 0.01}, group="g"), None)
# every partition runs one row again (a partition re-run elsewhere): it is kept once
store.commit_row("run-1", Record("shared", {"id": "shared"}, {"r": "shared"}, {"cost": 0.5}, group="g"), None)
store.close()
"""


def test_partitions_in_their_own_processes_commit_every_row_once_concurrently(postgres_url: str, tmp_path) -> None:
    client = PostgresRunStore.open_url(postgres_url)
    begin(client)
    go = tmp_path / "go"
    args = [postgres_url, str(ROWS), str(go)]
    workers = [subprocess.Popen([sys.executable, "-c", PARTITION, args[0], str(i), *args[1:]]) for i in range(WRITERS)]
    time.sleep(0.5)
    go.touch()
    for worker in workers:
        assert worker.wait(120) == 0
    rows = client.finished_rows("run-1")
    assert len(rows) == WRITERS * ROWS + 1
    assert {f"p{w}-{i:04d}" for w in range(WRITERS) for i in range(ROWS)} | {"shared"} == {k[1] for k in rows}
    # the attempt's totals read from the store count every partition's rows (the client wrote none of them)
    reader = PostgresRunStore.open_url(postgres_url)
    assert reader.attempt_totals("run-1").cost == pytest.approx(WRITERS * ROWS * 0.01 + 0.5)
    reader.close()
    client.close()


def test_one_writers_open_transaction_never_holds_up_anothers_commit(postgres_url: str) -> None:
    slow, fast, reader = (PostgresRunStore.open_url(postgres_url) for _ in range(3))
    begin(slow)
    fast.join_run("run-1")
    with slow._transaction():  # a partition in the middle of committing a large group
        slow.write_rows([slow.encode_row("run-1", record(f"s{i}"), None) for i in range(200)])
        started = time.monotonic()
        fast.commit_row("run-1", record("f1"), None)
        assert time.monotonic() - started < 1.0
        assert set(reader.finished_rows("run-1")) == {("g", "f1")}  # the other's rows are not visible yet
    assert len(reader.finished_rows("run-1")) == 201
    for store in (slow, fast, reader):
        store.close()


def test_the_same_row_from_two_writers_at_once_is_one_row(postgres_url: str) -> None:
    first, second = PostgresRunStore.open_url(postgres_url), PostgresRunStore.open_url(postgres_url)
    begin(first)
    second.join_run("run-1")
    with first._transaction():
        first.commit_row("run-1", record("r1", cost=1.0), None)
        # the second writer's upsert of the same key waits for the first to commit, then replaces it
        second._conn.execute("SET statement_timeout = 300")
        with pytest.raises(StoreError, match="canceling statement due to statement timeout"):
            second.commit_row("run-1", record("r1", cost=2.0), None)
    second._conn.execute("SET statement_timeout = 0")
    second.commit_row("run-1", record("r1", cost=2.0), None)
    rows = first.finished_rows("run-1")
    assert list(rows) == [("g", "r1")]
    assert rows[("g", "r1")].metrics["cost"] == 2.0
    first.close()
    second.close()
