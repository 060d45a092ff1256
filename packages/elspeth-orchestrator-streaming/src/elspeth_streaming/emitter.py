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

With ``windows`` (:mod:`elspeth_streaming.windowing`), each emitted group is counted in the open
windows, and a window that closes is emitted to the same sinks and marked emitted under its own id
(``window:NAME:SEQ``), never acknowledged: a resumed run starts after the last window emitted.
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
    from elspeth_streaming.windowing import Windowing
    from elspeth_streaming.windows import OpenWindow

__all__ = ["Emitter", "EmitterCounts"]

Finished = Record | Failure
_DONE: Any = object()
_RESULTS = "result(s)"


@dataclass
class EmitterCounts:
    """What the emitter did: results emitted, results a restart found already emitted, latencies seen."""

    emitted: int = 0
    already_emitted: int = 0
    held_by_sinks: int = 0
    acknowledged: int = 0
    emits: int = 0
    windows: int = 0
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
        windows: the run's windows, if it has any.
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
        windows: Windowing | None = None,
    ) -> None:
        self.ctx, self.sinks, self.ack, self.batch, self.linger = ctx, list(sinks), ack, batch, linger
        self.windows = windows
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
        if self.windows is not None and self._resuming:
            for spec in self.windows.specs:
                spec.next_seq = await self._next_window(spec.record_id)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="elspeth-streaming-emitter")

    async def put(self, item: Finished, arrived: float) -> None:
        """Queue a committed result (``arrived``: when its message was read); waits while the queue is full.

        Raises:
            RunFailed: a sink failed (the emitting task ended): the run stops taking messages.
        """
        if self.windows is not None:
            self.windows.queued(arrived)
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
            first = await self._next()
            if first is None:  # a quiet stream: a time window may be due all the same
                await self._close_windows(self.windows.due() if self.windows is not None else [])
                continue
            group = [first]
            if self.queue.qsize() + 1 < self.batch:  # as Kafka's linger.ms: the results close behind go out with it
                await asyncio.sleep(self.linger)
            while len(group) < self.batch and not self.queue.empty():
                group.append(self.queue.get_nowait())
            done = group[-1][0] is _DONE
            items = [pair for pair in group if pair[0] is not _DONE]
            if items:
                await self._emit(items)
            if done:
                if self.windows is not None:  # every result is emitted: the time windows over are whole
                    await self._close_windows(self.windows.due())
                    await self._close_windows(self.windows.rest(), partial=True)
                return

    async def _next(self) -> tuple[Finished, float] | None:
        """The next queued result; None when an open time window's end came first."""
        wait = self.windows.wait_s() if self.windows is not None else None
        if wait is None:
            return await self.queue.get()
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return None

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
        counted = {item.row_id for item in fresh}  # emitted for the first time: the windows count these
        for name, sink in self.sinks:
            held = await invoke(sink.holds, [item.row_id for item in pending]) if pending else set()
            self.counts.held_by_sinks += len(held)
            out = fresh + [item for item in pending if item.row_id not in held]
            counted.update(item.row_id for item in out)
            await _emit_to(name, sink, out, _RESULTS)
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
        if self.windows is not None:
            await self._close_windows(self.windows.add(group, counted) + self.windows.due())

    async def _close_windows(self, windows: list[OpenWindow], *, partial: bool = False) -> None:
        """Emit the records of these windows to every sink, then mark them emitted (never acknowledged)."""
        if not windows:
            return
        records = []
        for window in windows:
            records.append(await window.close(window.spec.next_seq, partial=partial))
            window.spec.next_seq += 1
        for name, sink in self.sinks:
            await _emit_to(name, sink, records, "window record(s)")
        self.ctx.mark_emitted([r.row_id for r in records])
        self.counts.windows += len(records)

    async def _next_window(self, record_id: Any) -> int:
        """The first window number the earlier attempts did not emit (marked in the store, or held by a sink)."""
        seq = 1
        while True:  # the emitted windows are 1..K: ask the store about them a block at a time
            ids = [record_id(k) for k in range(seq, seq + 256)]
            marked = self.ctx.emitted(ids)
            taken = next((i for i, row_id in enumerate(ids) if row_id not in marked), len(ids))
            seq += taken
            if taken < len(ids):
                break
        while True:  # a kill between a window's emit and its mark: a sink holds it already
            row_id = record_id(seq)
            held = [await invoke(sink.holds, [row_id]) for _, sink in self.sinks]
            if not any(row_id in h for h in held):
                return int(seq)
            self.ctx.mark_emitted([row_id])
            seq += 1


async def _emit_to(name: str, sink: Any, out: Sequence[Finished], what: str) -> None:
    if not out:
        return
    try:
        await invoke(sink.emit, out)
    except Exception as exc:  # the run stops; these are committed (results) but not marked emitted
        raise RunFailed(
            f"streaming sink '{name}' failed to emit {len(out)} {what}: {type(exc).__name__}: {exc}; "
            f"they are {'committed but ' if what == _RESULTS else ''}not marked emitted: resume the run to emit them"
        ) from exc
