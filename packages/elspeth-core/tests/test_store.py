"""The run store and the response cache files: private permissions, damaged pages, foreign files, totals."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from elspeth import ElspethError, LLMRequest, LLMResponse, Record, Usage
from elspeth.builtins.controls import PriceTable
from elspeth.cache import CacheFile
from elspeth.store import RunStore, StoreError
from elspeth.totals import RunTotals

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def begin(store: RunStore, run_id: str = "run-1") -> None:
    store.begin_run(
        run_id,
        name="n",
        orchestrator="experiment",
        settings={"name": "n"},
        settings_hash="0" * 64,
        settings_path=None,
        plugins=[],
    )


def record(row_id: str, cost: float = 0.25, prompt: int = 10, completion: int = 5, **extra: object) -> Record:
    metrics = {"cost": cost, "prompt_tokens": prompt, "completion_tokens": completion, **extra}
    return Record(row_id=row_id, inputs={"id": row_id}, outputs={"response": "ok"}, metrics=metrics, group="a")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@posix_only
def test_the_store_and_its_wal_and_shm_files_are_readable_by_their_owner_only(tmp_path):
    path = tmp_path / "out" / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    try:
        begin(store)
        store.commit_row("run-1", record("r1"), None)
        for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert made.exists(), made
            assert mode(made) == 0o600, f"{made.name} is {oct(mode(made))}"
    finally:
        store.close()


@posix_only
def test_the_cache_and_its_wal_and_shm_files_are_readable_by_their_owner_only(tmp_path):
    path = tmp_path / "elspeth-cache.sqlite"
    cache = CacheFile(path)
    try:
        cache.put("k", LLMResponse(content="hi", usage=Usage(1, 1)))
        for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert made.exists(), made
            assert mode(made) == 0o600, f"{made.name} is {oct(mode(made))}"
    finally:
        cache.close()


@posix_only
def test_an_existing_file_keeps_the_permissions_its_owner_gave_it(tmp_path):
    path = tmp_path / "shared.sqlite"
    RunStore.open(path).close()
    path.chmod(0o640)
    RunStore.open(path).close()
    assert mode(path) == 0o640


def damage(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` (never page 1, which holds the header and the schema)."""
    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    finally:
        conn.close()
    assert root > 1
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)


@pytest.mark.parametrize("table", ["runs", "rows"])
def test_every_read_and_write_of_a_damaged_store_names_the_file(tmp_path, table):
    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    store.commit_row("run-1", record("r1"), None)
    store.close()
    damage(path, table)
    store = RunStore.open(path, create=False)  # the header and the schema are intact: it opens
    try:
        calls = {
            "run": lambda: store.run("run-1"),
            "runs": store.runs,
            "begin_run": lambda: begin(store),
        }
        if table == "runs":
            calls["finish_run"] = lambda: store.finish_run("run-1", "completed", {})
            calls["set_total"] = lambda: store.set_total("run-1", 5)
        else:
            calls["finished_rows"] = lambda: store.finished_rows("run-1")
            calls["finished_mark"] = lambda: store.finished_mark("run-1")
            calls["finished_row"] = lambda: store.finished_row("run-1", "a", "r1", mark=10)
            calls["totals"] = lambda: store.totals("run-1")  # the open attempt is counted from its rows
            calls["commit_row"] = lambda: store.commit_row("run-1", record("r2"), None)
        for what, call in calls.items():
            with pytest.raises(StoreError) as caught:
                call()
            message = str(caught.value)
            assert str(path) in message, what
            assert "malformed" in message, what
            assert "move it aside" in message, what
    finally:
        store.close()


def test_the_totals_count_a_killed_attempt_from_its_committed_rows_and_then_every_attempt(tmp_path):
    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    store.commit_row("run-1", record("r1", cost=0.5, prompt=10, completion=4), None)
    store.commit_row("run-1", record("r2", cost=0.25, prompt=6, completion=2), None)
    store.commit_row("run-1", record("r3", cost=0.0, prompt=6, completion=2, cached=True), None)  # paid nothing
    store.close()  # killed: the attempt never finished

    store = RunStore.open(path, create=False)
    try:
        killed = store.totals("run-1")
        assert (killed.cost, killed.prompt_tokens, killed.completion_tokens, killed.llm_calls) == (0.75, 16, 6, 0)
        begin(store)  # the resume folds the killed attempt in; its own rows start from here
        assert store.totals("run-1").cost == 0.75
        assert store.attempt_totals("run-1").cost == 0
        store.commit_row("run-1", record("r4", cost=1.0), None)
        assert store.attempt_totals("run-1").cost == 1.0
        exact = RunTotals(cost=2.0, prompt_tokens=40, completion_tokens=12, llm_calls=4, duration_s=3.5)
        store.finish_run("run-1", "completed", {}, exact)
        assert store.totals("run-1") == exact
        assert store.run("run-1")["totals"] == exact.to_dict()
        begin(store)  # a finished attempt is not counted twice
        assert store.totals("run-1") == exact
        store.finish_run("run-1", "failed", {"error": "boom"})  # no totals: the rows it committed (none)
        assert store.totals("run-1").cost == 2.0
        assert store.totals("run-1").duration_s >= 3.5
    finally:
        store.close()


def test_the_running_attempts_totals_kept_as_rows_are_written_match_reading_the_rows_back(tmp_path):
    from elspeth import Failure

    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    store.commit_row("run-1", record("r1", cost=0.5, prompt=10, completion=4), None)
    store.commit_row("run-1", record("r2", cost=0.0, prompt=6, completion=2, cached=True), None)
    paid = Failure("r3", {"id": "r3"}, "validation", "no", metrics={"cost": 0.125, "prompt_tokens": 7}, group="a")
    store.commit_row("run-1", None, paid)  # a failed row's paid calls count too
    live = store.attempt_totals("run-1")
    reader = RunStore.open(path, create=False)  # another process: it can only read the rows back
    try:
        read = reader.attempt_totals("run-1")
    finally:
        reader.close()
        store.close()
    assert (live.cost, live.prompt_tokens, live.completion_tokens) == (0.625, 17, 4)
    assert (read.cost, read.prompt_tokens, read.completion_tokens) == (0.625, 17, 4)
    assert live.duration_s == pytest.approx(read.duration_s, abs=1e-6)


def test_a_price_table_reading_a_ledger_seeded_from_earlier_attempts_counts_them_against_its_budget():
    from elspeth import Ledger

    options = PriceTable.Options.model_validate({"prices": {"*": {"input": 1_000_000, "output": 0}}, "budget": 10})
    tracker = PriceTable(options)
    ledger = Ledger(RunTotals(cost=9.0, prompt_tokens=9, completion_tokens=4, llm_calls=3))
    tracker.use_ledger(ledger)
    assert tracker.stop_reason is None
    request = LLMRequest(system="", user="hi")
    response = LLMResponse(content="x", usage=Usage(1, 0), model="m")
    cost = asyncio.run(tracker.record(request, response))
    assert cost == 1.0
    response.metrics["cost"] = cost  # what the pipeline does: the cost goes into the ledger
    ledger.answered(response)
    assert tracker.stop_reason == "budget of 10.0 USD reached (10.0000 spent)"  # 9 earlier + 1 now
    summary = tracker.summary()
    assert (summary["total_cost"], summary["calls"], summary["tokens"]["prompt"]) == (10.0, 4, 10)
    assert summary["earlier_attempts_cost"] == 9.0
    spent = PriceTable(options)
    spent.use_ledger(Ledger(RunTotals(cost=10.5)))
    assert spent.stop_reason is not None  # reached before any call


def foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()


def test_the_cache_refuses_a_foreign_database_without_writing_to_it(tmp_path):
    path = tmp_path / "invoices.db"
    foreign_database(path)
    before = digest(path)
    with pytest.raises(ElspethError) as caught:
        CacheFile(path)
    assert str(caught.value).startswith(f"{path} is an SQLite database with tables invoices, not an Elspeth")
    assert digest(path) == before
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    finally:
        conn.close()


def test_the_cache_refuses_a_run_store_and_a_table_called_meta_that_is_someone_elses(tmp_path):
    store_path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(store_path)
    begin(store)
    store.close()
    before = digest(store_path)
    with pytest.raises(
        ElspethError, match=r"is an Elspeth run store with tables emitted, meta, rows, runs, totals, not an"
    ):
        CacheFile(store_path)
    assert digest(store_path) == before

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("CREATE TABLE meta (name TEXT)")
    conn.close()
    before = digest(other)
    with pytest.raises(ElspethError, match=r"other.db is an SQLite database with tables meta, not an Elspeth"):
        CacheFile(other)
    assert digest(other) == before


def test_the_cache_refuses_a_file_that_is_not_a_database_and_takes_an_empty_one(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database " * 100)
    before = digest(text)
    with pytest.raises(ElspethError, match=rf"{text} is not an Elspeth response cache or is corrupted"):
        CacheFile(text)
    assert digest(text) == before

    empty = tmp_path / "empty.sqlite"
    empty.touch()
    cache = CacheFile(empty)
    cache.put("k", LLMResponse(content="hi", usage=Usage(1, 1)))
    cache.close()
    again = CacheFile(empty)  # its own file opens again
    try:
        found = again.get("k", None)
        assert found is not None
        assert found.content == "hi"
    finally:
        again.close()


def test_a_version_1_store_is_refused_naming_the_file_and_what_to_do(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('format', 'elspeth-run-store'), ('version', '1');
            CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, orchestrator TEXT NOT NULL,
                status TEXT NOT NULL, settings_json TEXT NOT NULL, settings_hash TEXT NOT NULL, settings_path TEXT,
                plugins_json TEXT NOT NULL DEFAULT '[]', started_at TEXT NOT NULL, finished_at TEXT,
                rows_total INTEGER, metadata_json TEXT, attempts INTEGER NOT NULL DEFAULT 1);
            CREATE TABLE rows (run_id TEXT NOT NULL, grp TEXT NOT NULL, row_id TEXT NOT NULL, ok INTEGER NOT NULL,
                payload TEXT NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (run_id, grp, row_id));
            INSERT INTO runs (run_id, name, orchestrator, status, settings_json, settings_hash, started_at)
                VALUES ('old-run', 'n', 'experiment', 'running', '{}', 'x', '2025-01-01T00:00:00.000+00:00');
            """
        )
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        RunStore.open(path, create=False)
    message = str(caught.value)
    assert f"{path} is run store version 1; this Elspeth reads version 2 only" in message
    assert "Move the file aside" in message
    assert "set store.path to a new file" in message
    assert path.read_bytes() == before, "the old store is left as it was"


def test_a_fresh_store_is_version_2_and_keeps_each_rows_spending(tmp_path):
    from elspeth import Spend

    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    spend = Spend()
    spend.answered(LLMResponse(content="x", usage=Usage(7, 3), metrics={"cost": 0.5}, attempts=2))
    store.write_rows([store.encode_row("run-1", record("r1", cost=9.0), None, spend)])  # the ledger's, not the metrics
    store.close()
    with sqlite3.connect(path) as conn:
        assert dict(conn.execute("SELECT key, value FROM meta"))["version"] == "2"
    store = RunStore.open(path, create=False)  # killed: the attempt is counted from its rows' spending
    try:
        killed = store.totals("run-1")
        assert (killed.cost, killed.prompt_tokens, killed.completion_tokens, killed.llm_calls) == (0.5, 7, 3, 1)
    finally:
        store.close()


def test_failed_rows_have_a_partial_index_and_older_stores_get_it(tmp_path: Path) -> None:
    from elspeth import Failure

    path = tmp_path / "runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    store.commit_rows("run-1", [(record("r1"), None), (None, Failure("r2", {"id": "r2"}, "llm", "HTTP 400"))])
    store.close()
    conn = sqlite3.connect(path)
    plan = " ".join(
        r[3]
        for r in conn.execute("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM rows WHERE run_id='run-1' AND grp='' AND ok=0")
    )
    assert "rows_failed" in plan  # counting failures reads only the failed rows' entries
    assert conn.execute("SELECT row_id FROM rows INDEXED BY rows_failed WHERE ok=0").fetchall() == [("r2",)]
    conn.execute("DROP INDEX rows_failed")  # a store written before the index existed
    conn.commit()
    conn.close()
    RunStore.open(path).close()
    with sqlite3.connect(path) as again:
        assert again.execute("SELECT name FROM sqlite_master WHERE name='rows_failed'").fetchone() == ("rows_failed",)


def test_emitted_marks_are_kept_per_run_across_reopening_and_an_older_file_gains_their_table(tmp_path):
    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    begin(store)
    begin(store, "run-2")
    store.mark_emitted("run-1", [f"m{i}" for i in range(1200)])  # more than one statement's parameters
    store.mark_emitted("run-1", ["m0"])  # marking again is harmless
    asked = [f"m{i}" for i in range(1300)]
    assert store.emitted("run-1", asked) == {f"m{i}" for i in range(1200)}  # asked 500 at a time
    store.close()
    with sqlite3.connect(path) as conn:  # a version-2 file written before streaming existed has no such table
        conn.execute("DROP TABLE emitted")
    conn.close()
    reopened = RunStore.open(path)
    assert reopened.emitted("run-1", ["m0"]) == set(), "the table is made again, empty, when the file is opened"
    reopened.mark_emitted("run-1", ["m5", "m7"])
    assert reopened.emitted("run-1", ["m5", "m6", "m7"]) == {"m5", "m7"}
    assert reopened.emitted("run-2", ["m5"]) == set(), "marks belong to their run"
    reopened.close()
