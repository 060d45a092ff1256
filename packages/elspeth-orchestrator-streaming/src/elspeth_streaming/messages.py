"""Reading a streaming source for the row runner: malformed messages, limits, and stopping while the source is quiet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from elspeth import Cancel, Failure, Malformed, Row, iterate_rows

if TYPE_CHECKING:
    from elspeth import OrchestrationContext
    from elspeth_streaming.emitter import Emitter

__all__ = ["Messages"]

_END: Any = object()


class _Raised:
    """What the source raised, carried to where messages are taken."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class Messages:
    """The source's messages as rows for the row runner.

    A task reads up to ``ahead`` messages ahead of the row runner (never past ``max_messages``). A
    :class:`~elspeth.Malformed` message becomes a failure at stage ``source`` (committed, then emitted
    like any result) and the stream goes on. A cancel (a signal, ``--max-seconds``, a budget) ends the
    stream even while the source has nothing to give, looked at every ``poll`` seconds.
    """

    def __init__(
        self,
        source: Any,
        ctx: OrchestrationContext,
        emitter: Emitter,
        *,
        cancel: Cancel,
        max_messages: int | None,
        poll: float,
        ahead: int,
        arrived: dict[str, float] | None = None,
    ) -> None:
        self.source, self.ctx, self.emitter, self.cancel = source, ctx, emitter, cancel
        self.max_messages, self.poll = max_messages, poll
        self.ahead = ahead
        self.taken = 0
        self.malformed = 0
        # message id -> when it was read, until its result is queued (bounded by the messages read ahead and in
        # flight); the orchestrator hands in the dict its windows read their watermark from
        self.arrived: dict[str, float] = {} if arrived is None else arrived

    async def __aiter__(self) -> AsyncIterator[Row]:
        # a task reads the source a little ahead (``ahead`` messages, never past max_messages), so taking a message
        # costs no task of its own; only a wait on an empty queue is raced against the run's stop
        queue: asyncio.Queue[Any] = asyncio.Queue(self.ahead)
        reader = asyncio.ensure_future(self._read(queue))
        try:
            while True:
                item = queue.get_nowait() if not queue.empty() else await self._wait(queue)
                if item is _END or self.cancel.is_set():
                    return
                if isinstance(item, _Raised):
                    raise item.error
                self.taken += 1
                if isinstance(item, Malformed):
                    await self._malformed(item)
                    continue
                yield item
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, queue: asyncio.Queue[Any]) -> None:
        read = 0
        try:
            async for item in iterate_rows(self.source):
                if isinstance(item, Row):
                    self.arrived[item.id] = time.monotonic()  # read: the latency to its result starts here
                await queue.put(item)
                read += 1
                if self.max_messages is not None and read >= self.max_messages:
                    break
        except Exception as exc:  # the source's failure stops the run, raised where the messages are taken
            await queue.put(_Raised(exc))
            return
        await queue.put(_END)

    async def _wait(self, queue: asyncio.Queue[Any]) -> Any:
        """The next item once one comes, or the end once the run is asked to stop (looked at every ``poll`` s)."""
        getting = asyncio.ensure_future(queue.get())
        try:
            while True:
                done, _ = await asyncio.wait({getting}, timeout=self.poll)
                if done:
                    return getting.result()
                if self.cancel.is_set():
                    return _END
        finally:
            if not getting.done():
                getting.cancel()

    async def _malformed(self, item: Malformed) -> None:
        self.malformed += 1
        arrived = time.monotonic()
        prior = self.ctx.prior_result(None, item.id)
        if prior is not None:  # read and recorded before a restart: emitted (again only if it never was)
            self.ctx.resumed_row(prior)
            await self.emitter.put(prior, arrived)
            return
        failure = Failure(item.id, {}, "source", item.reason, output={"raw": item.raw} if item.raw else {})
        await self.ctx.commit_row(failure=failure)
        await self.emitter.put(failure, arrived)
