"""Running rows concurrently under a bounded limit, on one asyncio event loop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from elspeth._sync import iterate_rows
from elspeth.datatypes import Row

__all__ = ["Cancel", "run_rows", "waiting_out"]


class Cancel:
    """A stop signal shared by everything in a run.

    Setting it stops new rows from starting; rows already in flight finish and are kept. A
    cancel with a ``parent`` is also set whenever its parent is (an experiment's early stop
    stops only that experiment; Ctrl-C stops the whole run).
    """

    def __init__(self, parent: Cancel | None = None) -> None:
        self.reason: str | None = None
        self.parent = parent

    def set(self, reason: str) -> None:
        """Stop taking new rows; the first reason given is kept."""
        if self.reason is None:
            self.reason = reason

    def is_set(self) -> bool:
        """True once a stop has been asked for, here or in a parent."""
        return self.reason is not None or (self.parent is not None and self.parent.is_set())


class _Slots:
    """``concurrency`` slots for rows; a row coming back from a backoff is served before a new row."""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    async def acquire(self, returning: bool = False) -> None:
        if self.free > 0 and not any(self.waiting):
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[0 if returning else 1].append(future)
        await future  # release() hands its slot straight over: ``free`` is not touched

    def release(self) -> None:
        for queue in self.waiting:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self.free += 1


class _RowSlot:
    """The slot one row holds; handed back while the row waits out a backoff (see :func:`waiting_out`)."""

    def __init__(self, slots: _Slots) -> None:
        self.slots = slots
        self.held = True


_ROW_SLOT: ContextVar[_RowSlot | None] = ContextVar("elspeth_row_slot", default=None)


async def waiting_out(delay: float) -> None:
    """Sleep ``delay`` seconds without holding the row's concurrency slot, then take one back.

    The LLM pipeline waits out every backoff and ``Retry-After`` through this, so ``concurrency``
    bounds the calls in flight, not the rows waiting: while one row sleeps another row runs. Coming
    back, the row is served before rows not yet begun (it is nearer to done). Outside
    :func:`run_rows` (or for a row whose slot another of its calls already handed back) it only sleeps.
    """
    slot = _ROW_SLOT.get()
    if slot is None or not slot.held:
        await asyncio.sleep(delay)
        return
    slot.held = False
    slot.slots.release()
    try:
        await asyncio.sleep(delay)
    finally:
        await slot.slots.acquire(returning=True)
        slot.held = True


async def run_rows(
    rows: Iterable[Row] | AsyncIterable[Row],
    handle: Callable[[Row], Awaitable[Any]],
    *,
    concurrency: int,
    cancel: Cancel | None = None,
) -> int:
    """Call ``handle(row)`` for every row with at most ``concurrency`` in flight (rows in a backoff aside).

    Rows are pulled lazily, one ahead of the free slots, so memory stays bounded however many rows
    there are. A row waiting out a backoff (:func:`waiting_out`) lends its slot to the next row.
    ``handle`` is expected to record its own row failures; an exception escaping it stops the run
    and is raised after the rows in flight have finished.

    Returns:
        how many rows were started.

    """
    cancel = cancel or Cancel()
    slots = _Slots(concurrency)
    started = 0
    errors: list[Exception] = []  # kept here, not raised in the task group, so rows in flight can finish

    async def one(row: Row) -> None:
        nonlocal started
        slot = _RowSlot(slots)
        _ROW_SLOT.set(slot)  # this task's own context
        try:
            if cancel.is_set() or errors:
                started -= 1  # taken from the source but never begun
                return
            await handle(row)
        except Exception as exc:
            errors.append(exc)
        finally:
            if slot.held:
                slots.release()

    unread: Exception | None = None  # the source's own failure (a cluster's partition): raised as it is, not grouped
    async with asyncio.TaskGroup() as group:
        try:
            async for row in iterate_rows(rows):
                if cancel.is_set() or errors:
                    break
                await slots.acquire()
                if cancel.is_set() or errors:
                    slots.release()  # taken from the source but never begun
                    break
                started += 1
                group.create_task(one(row))
        except Exception as exc:  # the rows in flight finish (and are committed) first
            unread = exc
    if unread is not None:
        raise unread
    if errors:
        raise errors[0]
    return started
