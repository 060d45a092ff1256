"""Running rows concurrently under a bounded limit, on one asyncio event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

from elspeth._sync import iterate
from elspeth.types import Row

__all__ = ["Cancel", "run_rows"]


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


_DONE = object()


async def run_rows(
    rows: Iterable[Row] | AsyncIterable[Row],
    handle: Callable[[Row], Awaitable[Any]],
    *,
    concurrency: int,
    cancel: Cancel | None = None,
) -> int:
    """Call ``handle(row)`` for every row with at most ``concurrency`` in flight.

    Rows are pulled lazily, so memory stays bounded however many rows there are. ``handle`` is
    expected to record its own row failures; an exception escaping it stops the run and is raised
    after the rows in flight have finished.

    Returns:
        how many rows were started.

    """
    cancel = cancel or Cancel()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency * 2)
    started = 0
    errors: list[Exception] = []  # kept here, not raised in the task group, so rows in flight can finish

    async def produce() -> None:
        nonlocal started
        async for row in iterate(rows):
            if cancel.is_set() or errors:
                break
            await queue.put(row)
            started += 1
        for _ in range(concurrency):
            await queue.put(_DONE)

    async def work() -> None:
        nonlocal started
        while True:
            row = await queue.get()
            if row is _DONE:
                return
            if cancel.is_set() or errors:
                started -= 1  # taken from the source but never begun
                continue
            try:
                await handle(row)
            except Exception as exc:
                errors.append(exc)

    async with asyncio.TaskGroup() as group:
        group.create_task(produce())
        for _ in range(concurrency):
            group.create_task(work())
    if errors:
        raise errors[0]
    return started
