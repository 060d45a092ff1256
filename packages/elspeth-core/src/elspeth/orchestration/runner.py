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

    __slots__ = ("held", "pool")

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.held = True


_ROW_SLOT: ContextVar[_RowSlot | None] = ContextVar("elspeth_row_slot", default=None)


async def waiting_out(delay: float) -> None:
    """Sleep ``delay`` seconds without holding the row's concurrency slot, then take one back.

    The LLM pipeline waits out every backoff and ``Retry-After`` through this, so ``concurrency``
    bounds the calls in flight, not the rows waiting: while one row sleeps another row runs (a
    stand-in worker is started for it). Coming back, the row is served before rows not yet begun
    (it is nearer to done). Outside :func:`run_rows` (or for a row whose slot another of its calls
    already handed back) it only sleeps.
    """
    slot = _ROW_SLOT.get()
    if slot is None or not slot.held:
        await asyncio.sleep(delay)
        return
    pool = slot.pool
    slot.held = False
    pool.lend()
    try:
        await asyncio.sleep(delay)
    finally:
        await pool.slots.acquire(returning=True)
        pool.lent -= 1
        slot.held = True


class _Pool:
    """The workers of one :func:`run_rows` call: ``concurrency`` of them, plus a stand-in per row lending its slot.

    A fixed pool, not a task per row: a task per row cost about 25 µs of event-loop time a row (its
    creation, the task group's bookkeeping, the hand-over of a slot to the loop that starts it), a
    quarter of a cheap row's whole cost. Rows are pulled one at a time, by the worker that will run
    them, only once it holds a slot.
    """

    def __init__(
        self,
        rows: Iterable[Row] | AsyncIterable[Row],
        handle: Callable[[Row], Awaitable[Any]],
        concurrency: int,
        cancel: Cancel,
    ) -> None:
        self.source = aiter(iterate_rows(rows))
        self.handle = handle
        self.concurrency = concurrency
        self.cancel = cancel
        self.slots = _Slots(concurrency)
        self.pulling = False  # an async generator cannot be advanced by two workers at once
        self.queue: deque[asyncio.Future[None]] = deque()  # workers waiting for their turn to pull
        self.group: asyncio.TaskGroup | None = None
        self.workers = 0
        self.lent = 0  # rows waiting out a backoff, their slot handed back
        self.started = 0
        self.done = False  # the source is exhausted, or no row may start any more
        self.unread: Exception | None = None  # raised as it is, not grouped, once the rows in flight are done
        self.errors: list[Exception] = []  # kept here, not raised in the task group, so rows in flight can finish

    def spawn(self) -> None:
        assert self.group is not None
        self.workers += 1
        self.group.create_task(self._work())

    def lend(self) -> None:
        """A row hands its slot back for a while: another worker may use it."""
        self.lent += 1
        self.slots.release()
        if not self.done and self.workers - self.lent < self.concurrency:
            self.spawn()

    def _stopped(self) -> bool:
        if not self.done and (self.errors or self.cancel.is_set()):
            self.done = True
        return self.done

    async def _next(self) -> Row | None:
        if self._stopped():
            return None
        if self.pulling:  # another worker is advancing the source (it awaits a read): wait for its hand-over
            turn = asyncio.get_running_loop().create_future()
            self.queue.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._hand_over()  # handed the turn, then cancelled: pass it on
                raise
        else:
            self.pulling = True
        try:
            row = None if self._stopped() else await anext(self.source, None)
        except Exception as exc:  # the source's own failure (a cluster's partition): the rows in flight finish first
            self.unread, row = exc, None
        finally:
            self._hand_over()
        if row is None:
            self.done = True
        return None if self._stopped() else row  # a row taken while the run stopped is never begun

    def _hand_over(self) -> None:
        while self.queue:
            turn = self.queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.pulling = False

    async def _work(self) -> None:
        try:
            slots = self.slots
            while True:
                if slots.free > 0 and not (slots.waiting[0] or slots.waiting[1]):
                    slots.free -= 1  # acquire()'s fast path, written out: it is taken once per row
                else:
                    await slots.acquire()
                row = await self._next()
                if row is None:
                    slots.release()
                    return
                self.started += 1
                slot = _RowSlot(self)
                _ROW_SLOT.set(slot)
                try:
                    await self.handle(row)
                except Exception as exc:
                    self.errors.append(exc)
                finally:
                    if slot.held:
                        slots.release()
                if self.workers - self.lent > self.concurrency:
                    return  # a stand-in whose row's owner is back: one worker fewer
        finally:
            self.workers -= 1


async def run_rows(
    rows: Iterable[Row] | AsyncIterable[Row],
    handle: Callable[[Row], Awaitable[Any]],
    *,
    concurrency: int,
    cancel: Cancel | None = None,
) -> int:
    """Call ``handle(row)`` for every row with at most ``concurrency`` in flight (rows in a backoff aside).

    Rows are pulled lazily, as slots free up, so memory stays bounded however many rows there are.
    A row waiting out a backoff (:func:`waiting_out`) lends its slot to the next row. ``handle`` is
    expected to record its own row failures; an exception escaping it stops the run and is raised
    after the rows in flight have finished.

    Returns:
        how many rows were started.

    """
    pool = _Pool(rows, handle, max(1, concurrency), cancel or Cancel())
    async with asyncio.TaskGroup() as group:
        pool.group = group
        for _ in range(pool.concurrency):
            pool.spawn()
    if pool.unread is not None:
        raise pool.unread
    if pool.errors:
        raise pool.errors[0]
    return pool.started
