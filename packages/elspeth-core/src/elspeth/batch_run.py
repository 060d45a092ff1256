"""Sending a run's requests through a :class:`~elspeth.batching.BatchingClient`, so that a crash never submits twice.

:func:`run_batches` is the loop every provider shares: split by the client's limits, write each
batch's tag and item ids to a :class:`BatchJournal` *before* submitting, the batch id right after,
poll until every batch is terminal, and hand each result to the caller, marking the batch collected
only once all its results were handed over. Resumed with the same journal and items, it submits
nothing already submitted: a batch with an id is polled; a batch planned without one is first
looked up by its tag (:meth:`~elspeth.batching.BatchingClient.find`), since the process may have died
after the provider took it but before its id was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from elspeth.batching import BatchingClient, BatchItem, BatchResult, BatchStatus, split_batches
from elspeth.llm_errors import LLMError

__all__ = ["BatchJournal", "JournalEntry", "MemoryJournal", "run_batches"]

SUBMIT_ATTEMPTS = 4


@dataclass
class JournalEntry:
    """One batch of a run as the journal keeps it.

    Attributes:
        tag: the run's name for the batch (unique per run; kept with the batch at the provider).
        custom_ids: its items, in order.
        batch_id: the provider's id, once submitted.
        collected: True once every result was handed to the caller.

    """

    tag: str
    custom_ids: list[str]
    batch_id: str | None = None
    collected: bool = False


class BatchJournal(Protocol):
    """Where a run keeps its batches across a crash (the run store's ``batches`` records, or memory)."""

    def entries(self) -> list[JournalEntry]:
        """Every batch of the run, in the order planned."""
        ...

    def planned(self, tag: str, custom_ids: Sequence[str]) -> None:
        """Record a batch about to be submitted (durably, before the submission)."""
        ...

    def submitted(self, tag: str, batch_id: str) -> None:
        """Record the provider's id of a planned batch."""
        ...

    def collected(self, tag: str) -> None:
        """Record that every result of the batch was handed over."""
        ...


@dataclass
class MemoryJournal:
    """A :class:`BatchJournal` in memory: for tests, and for a run without a run store (no resuming)."""

    kept: dict[str, JournalEntry] = field(default_factory=dict)

    def entries(self) -> list[JournalEntry]:
        """The batches, in the order planned."""
        return list(self.kept.values())

    def planned(self, tag: str, custom_ids: Sequence[str]) -> None:
        """Keep a new batch."""
        self.kept[tag] = JournalEntry(tag, list(custom_ids))

    def submitted(self, tag: str, batch_id: str) -> None:
        """Keep its id."""
        self.kept[tag].batch_id = batch_id

    def collected(self, tag: str) -> None:
        """Mark it collected."""
        self.kept[tag].collected = True


OnStatus = Callable[[Sequence[BatchStatus]], Awaitable[None] | None]
OnResult = Callable[[BatchResult], Awaitable[None] | None]


async def _maybe(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value


def _plan(
    client: BatchingClient, items: Mapping[str, BatchItem], journal: BatchJournal, run_tag: str
) -> list[JournalEntry]:
    entries = journal.entries()
    known = {cid for entry in entries for cid in entry.custom_ids}
    fresh = [item for cid, item in items.items() if cid not in known]
    for number, part in enumerate(split_batches(fresh, client.batch_limits, client.item_bytes), len(entries)):
        journal.planned(f"{run_tag}/{number}", [item.custom_id for item in part])
    return journal.entries()


async def _submit(client: BatchingClient, entry: JournalEntry, items: Mapping[str, BatchItem]) -> str:
    missing = [cid for cid in entry.custom_ids if cid not in items]
    if missing:
        raise ValueError(
            f"batch {entry.tag} was planned with items this run no longer has ({', '.join(missing[:5])}): "
            "the input changed since the run was started"
        )
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        found = await client.find(entry.tag)  # the provider may have taken an earlier attempt
        if found is not None:
            return found
        try:
            return await client.submit([items[cid] for cid in entry.custom_ids], entry.tag)
        except LLMError as exc:
            if not exc.retryable or attempt == SUBMIT_ATTEMPTS:
                raise
            await asyncio.sleep(exc.retry_after if exc.retry_after is not None else 2.0**attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def run_batches(
    client: BatchingClient,
    items: Sequence[BatchItem],
    journal: BatchJournal,
    *,
    run_tag: str,
    on_result: OnResult,
    on_status: OnStatus | None = None,
    poll_interval: float = 30.0,
) -> list[BatchStatus]:
    """Submit what is not yet submitted, poll every uncollected batch, and hand over each result once.

    Args:
        client: the provider's client.
        items: the requests to answer; only batches holding one of them are submitted and polled. A
            batch planned (but not submitted) by an earlier process must find all its items here.
        journal: the run's batches so far (empty on a fresh run).
        run_tag: prefix of every batch tag (the run id), so a tag is unique at the provider.
        on_result: called with each item's result (sync or async); an item the provider left out
            comes as ``expired``. A batch is marked collected only after all its results returned.
        on_status: called after every round of polls with each uncollected batch's status.
        poll_interval: seconds between rounds.

    Returns:
        The final status of every batch this call collected.

    """
    by_id = {item.custom_id: item for item in items}
    planned = _plan(client, by_id, journal, run_tag)
    pending = [entry for entry in planned if not entry.collected and not by_id.keys().isdisjoint(entry.custom_ids)]
    for entry in pending:
        if entry.batch_id is None:
            entry.batch_id = await _submit(client, entry, by_id)
            journal.submitted(entry.tag, entry.batch_id)
    finals: list[BatchStatus] = []
    while pending:
        statuses = [await client.poll(str(entry.batch_id)) for entry in pending]
        if on_status is not None:
            await _maybe(on_status(statuses))
        waiting = []
        for entry, status in zip(pending, statuses, strict=True):
            if not status.terminal:
                waiting.append(entry)
                continue
            await _collect(client, entry, on_result)
            journal.collected(entry.tag)
            finals.append(status)
        pending = waiting
        if pending:
            await asyncio.sleep(poll_interval)
    return finals


async def _collect(client: BatchingClient, entry: JournalEntry, on_result: OnResult) -> None:
    expected = set(entry.custom_ids)
    async for result in client.results(str(entry.batch_id)):
        if result.custom_id in expected:  # anything else is not this run's; one answer per item
            expected.discard(result.custom_id)
            await _maybe(on_result(result))
    for custom_id in entry.custom_ids:
        if custom_id in expected:
            await _maybe(on_result(BatchResult(custom_id, expired=True)))
