"""Handing finished results to the streaming sinks: commit, emit, mark emitted, acknowledge, in that order.

The row runner has committed a result to the run store before it reaches :class:`Emitter`. A
background task takes what has queued (up to ``emit_batch``), emits it to every
:class:`~elspeth.StreamSink`, records it as emitted in the run store, and only then acknowledges the
messages to the source. A kill at any point therefore leaves each message in one of three states that
a restart resolves without loss or repeat: not committed (run again: at most the calls in flight),
committed but not marked emitted (the sinks are asked which of those they hold, the rest are emitted),
or emitted (acknowledged again, never emitted again).

The queue is bounded: a slow sink fills it, ``put`` then waits, which holds the row's worker, so the
source is read no faster than the sinks take results and memory stays flat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from elspeth import Failure, Record, RunFailed, invoke

if TYPE_CHECKING:
    from elspeth import OrchestrationContext

__all__ = ["Emitter", "EmitterCounts"]

Finished = Record | Failure
_DONE: Any = object()


@dataclass
class EmitterCounts:
    """What the emitter did: results emitted, results a restart found already emitted, latencies seen."""

    emitted: int = 0
    already_emitted: int = 0
    held_by_sinks: int = 0
    acknowledged: int = 0
    emits: int = 0
    seconds_in_sinks: float = 0.0
    latencies: list[float] = field(default_factory=list)


class Emitter:
    """Emits results to the streaming sinks in small groups as they finish (see the module's docstring).

    Args:
        ctx: the run's context (its store remembers what was emitted).
        sinks: ``(name, sink)`` of the streaming sinks.
        ack: the source's ``ack(ids)``, or None for a source that needs none (a file, standard input).
        batch: at most this many results per emit.
        limit: results that may wait before :meth:`put` waits.
        linger: seconds to wait, after a result, for more to go out with it (fewer, larger emits and commits).
    """

    def __init__(
        self,
        ctx: OrchestrationContext,
        sinks: Sequence[tuple[str, Any]],
        ack: Any,
        *,
        batch: int,
        limit: int,
        linger: float = 0.0,
    ) -> None:
        self.ctx, self.sinks, self.ack, self.batch, self.linger = ctx, list(sinks), ack, batch, linger
        self.queue: asyncio.Queue[tuple[Finished, float]] = asyncio.Queue(limit)
        self.counts = EmitterCounts()
        self._task: asyncio.Task[None] | None = None
        self._resuming = bool(ctx.prior)

    async def start(self) -> None:
        """Open the sinks that have ``open(ctx)`` (a sink names its files there), then start the task that emits."""
        for _, sink in self.sinks:
            opener = getattr(sink, "open", None)
            if opener is not None:
                await invoke(opener, self.ctx.plugin_context)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="elspeth-streaming-emitter")

    async def put(self, item: Finished, arrived: float) -> None:
        """Queue a committed result (``arrived``: when its message was read); waits while the queue is full.

        Raises:
            RunFailed: a sink failed (the emitting task ended): the run stops taking messages.
        """
        await self._put((item, arrived))

    async def finish(self) -> None:
        """Emit everything queued, then stop the task; raises what a sink raised."""
        await self._put((_DONE, 0.0))
        if self._task is not None:
            await self._task

    async def _put(self, pair: tuple[Any, float]) -> None:
        task = self._task
        if task is not None and task.done():
            task.result()
        if not self.queue.full() or task is None:
            await self.queue.put(pair)
            return
        putting = asyncio.ensure_future(self.queue.put(pair))
        await asyncio.wait({putting, task}, return_when=asyncio.FIRST_COMPLETED)
        if not putting.done():  # the task ended while the queue was full: nothing will take from it again
            putting.cancel()
            task.result()

    async def abort(self) -> None:
        """Stop at once (a bug elsewhere stopped the run); what is queued stays committed, not marked emitted."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            group = [await self.queue.get()]
            if self.queue.qsize() + 1 < self.batch:  # as Kafka's linger.ms: the results close behind go out with it
                await asyncio.sleep(self.linger)
            while len(group) < self.batch and not self.queue.empty():
                group.append(self.queue.get_nowait())
            done = group[-1][0] is _DONE
            items = [pair for pair in group if pair[0] is not _DONE]
            if items:
                await self._emit(items)
            if done:
                return

    async def _emit(self, group: list[tuple[Finished, float]]) -> None:
        items = [item for item, _ in group]
        ids = [item.row_id for item in items]
        fresh, resumed = items, []
        if self._resuming:  # a result the resumed run had committed may already be in the sinks
            resumed = [item for item in items if self.ctx.prior_result(item.group, item.row_id) is not None]
            fresh = [item for item in items if self.ctx.prior_result(item.group, item.row_id) is None]
        started = time.perf_counter()
        emitted = self.ctx.emitted([item.row_id for item in resumed]) if resumed else set()
        self.counts.already_emitted += len(emitted)
        pending = [item for item in resumed if item.row_id not in emitted]
        for name, sink in self.sinks:
            held = await invoke(sink.holds, [item.row_id for item in pending]) if pending else set()
            self.counts.held_by_sinks += len(held)
            out = fresh + [item for item in pending if item.row_id not in held]
            if out:
                try:
                    await invoke(sink.emit, out)
                except Exception as exc:  # the run stops; these results are committed, not marked emitted
                    raise RunFailed(
                        f"streaming sink '{name}' failed to emit {len(out)} result(s): {type(exc).__name__}: {exc}; "
                        "they are committed but not marked emitted: resume the run to emit them"
                    ) from exc
        self.ctx.mark_emitted([i for i in ids if i not in emitted])
        self.counts.seconds_in_sinks += time.perf_counter() - started
        if self.ack is not None:
            await self.ack(ids)
            self.counts.acknowledged += len(ids)
        now = time.monotonic()
        self.counts.emitted += len(fresh) + len(pending)
        self.counts.emits += 1
        self.counts.latencies.extend(now - arrived for _, arrived in group[-64:])  # a sample keeps memory flat
        del self.counts.latencies[:-4096]
