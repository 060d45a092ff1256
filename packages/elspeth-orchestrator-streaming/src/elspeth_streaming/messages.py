"""Reading a streaming source for the row runner: malformed messages, limits, and stopping while the source is quiet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from elspeth import Cancel, Failure, Malformed, Row, iterate_rows

if TYPE_CHECKING:
    from elspeth import OrchestrationContext
    from elspeth_streaming.emitter import Emitter

__all__ = ["Messages"]


class Messages:
    """The source's messages as rows for the row runner.

    A :class:`~elspeth.Malformed` message becomes a failure at stage ``source`` (committed, then
    emitted like any result) and the stream goes on. ``max_messages`` ends the stream after that many
    messages; a cancel (a signal, ``--max-seconds``, a budget) ends it even while the source has
    nothing to give, looked at every ``poll`` seconds.
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
    ) -> None:
        self.source, self.ctx, self.emitter, self.cancel = source, ctx, emitter, cancel
        self.max_messages, self.poll = max_messages, poll
        self.taken = 0
        self.malformed = 0
        self.arrived: dict[str, float] = {}  # message id -> when it was read, until its result is queued

    async def __aiter__(self) -> AsyncIterator[Row]:
        items = aiter(iterate_rows(self.source))
        try:
            while self.max_messages is None or self.taken < self.max_messages:
                item = await self._next(items)
                if item is None:
                    return
                self.taken += 1
                if isinstance(item, Malformed):
                    await self._malformed(item)
                    continue
                self.arrived[item.id] = time.monotonic()
                yield item
        finally:
            closing = getattr(items, "aclose", None)
            if closing is not None:
                await closing()

    async def _next(self, items: AsyncIterator[Any]) -> Any:
        """The next message, or None at the stream's end or once the run is asked to stop."""
        if self.cancel.is_set():
            return None
        waiting = asyncio.ensure_future(anext(items))
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=self.poll)
                if done:
                    break
                if self.cancel.is_set():
                    return None
        finally:
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await waiting
        try:
            return waiting.result()
        except StopAsyncIteration:
            return None

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
