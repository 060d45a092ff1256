"""The run store's ``batches`` records: each provider batch of a run, so a killed run resumes by polling it.

One row per batch, keyed by ``(run_id, tag)``: its items' custom ids (JSON), the provider's batch id
once submitted, and whether every result was handed over. The table is made when first used, in
SQL both SQLite and PostgreSQL read, through the store's own statements (``_execute``), so every
backend that subclasses :class:`~elspeth.store.RunStore` has it; an older store file gains it
without a new version, as it gained ``emitted`` (nothing else reads it). Every write is committed
before it returns (both backends autocommit), which is what :class:`~elspeth.batch_run.BatchJournal`
asks: the tag is in the store before the batch is submitted, the id right after.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from elspeth.batch_run import JournalEntry

__all__ = ["BatchRecords", "StoreJournal"]

_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    run_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    seq INTEGER NOT NULL,
    custom_ids TEXT NOT NULL,
    batch_id TEXT,
    collected INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, tag)
)
"""


class BatchRecords:
    """The run store's batch methods (mixed into :class:`~elspeth.store.RunStore`)."""

    _batches_ready = False

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError  # the store's

    def _guard(self, doing: str) -> Any:
        raise NotImplementedError  # the store's

    def _ensure_batches(self) -> None:
        if not self._batches_ready:
            self._execute(_BATCHES)
            self._batches_ready = True

    def batch_entries(self, run_id: str) -> list[JournalEntry]:
        """The run's batches, in the order planned."""
        with self._guard(f"reading the batches of run {run_id}"):
            self._ensure_batches()
            found = self._execute(
                "SELECT tag, custom_ids, batch_id, collected FROM batches WHERE run_id=? ORDER BY seq", (run_id,)
            ).fetchall()
        return [JournalEntry(tag, json.loads(ids), batch_id, bool(done)) for tag, ids, batch_id, done in found]

    def plan_batch(self, run_id: str, tag: str, custom_ids: Sequence[str]) -> None:
        """Record a batch about to be submitted (committed before it returns)."""
        with self._guard(f"recording a batch of run {run_id}"):
            self._ensure_batches()
            (seq,) = self._execute("SELECT COUNT(*) FROM batches WHERE run_id=?", (run_id,)).fetchone()
            self._execute(
                "INSERT INTO batches (run_id, tag, seq, custom_ids) VALUES (?, ?, ?, ?)",
                (run_id, tag, int(seq), json.dumps(list(custom_ids))),
            )

    def batch_submitted(self, run_id: str, tag: str, batch_id: str) -> None:
        """Record the provider's id of a planned batch."""
        with self._guard(f"recording batch {batch_id} of run {run_id}"):
            self._execute("UPDATE batches SET batch_id=? WHERE run_id=? AND tag=?", (batch_id, run_id, tag))

    def batch_collected(self, run_id: str, tag: str) -> None:
        """Record that every result of the batch was handed over."""
        with self._guard(f"recording batch {tag} of run {run_id} collected"):
            self._execute("UPDATE batches SET collected=1 WHERE run_id=? AND tag=?", (run_id, tag))

    def batch_journal(self, run_id: str) -> StoreJournal:
        """The run's :class:`~elspeth.batch_run.BatchJournal` in this store."""
        return StoreJournal(self, run_id)


class StoreJournal:
    """A :class:`~elspeth.batch_run.BatchJournal` kept in a run store's ``batches`` records."""

    def __init__(self, store: BatchRecords, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def entries(self) -> list[JournalEntry]:
        """The run's batches, in the order planned."""
        return self.store.batch_entries(self.run_id)

    def planned(self, tag: str, custom_ids: Sequence[str]) -> None:
        """Record a batch before it is submitted."""
        self.store.plan_batch(self.run_id, tag, custom_ids)

    def submitted(self, tag: str, batch_id: str) -> None:
        """Record its id."""
        self.store.batch_submitted(self.run_id, tag, batch_id)

    def collected(self, tag: str) -> None:
        """Mark it collected."""
        self.store.batch_collected(self.run_id, tag)
