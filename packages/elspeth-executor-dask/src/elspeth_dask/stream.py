"""Partitions out to the cluster, results back in input order, with a bounded number in flight.

The client holds at most one partition's results at a time (plus the rows the runner has not yet
reached), however large the input: the next partitions run on the workers meanwhile, and their
results wait there until they are asked for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from elspeth import (
    ElspethError,
    Partition,
    Partitioned,
    PartitionResult,
    RunFailed,
    RunResult,
    RunSpec,
    ShippedResults,
    Table,
    invoke,
    shipped_chunks,
)
from elspeth_dask.coordinator import Controls, start_controls
from elspeth_dask.tasks import run_partition_task

if TYPE_CHECKING:
    from elspeth import OrchestrationContext, Row

__all__ = ["run_on_cluster"]


async def run_on_cluster(
    client: Any, orchestrator: Any, table: Table, ctx: OrchestrationContext, options: Any
) -> RunResult:
    """Run ``orchestrator`` here over the rows as the cluster works them out; returns its result."""
    threads = sum(client.nthreads().values()) or 1
    spec = RunSpec.of(ctx, table.columns)
    controls = await asyncio.to_thread(start_controls, client, ctx)
    stream = _Stream(client, spec, ctx, options.in_flight or 2 * threads, controls)
    try:
        # on every worker, so the scheduler does not keep the partitions where the spec was computed
        await asyncio.to_thread(client.replicate, [stream.spec])
        parts = await _partitions(client, table, options)
        ctx.shipped = ShippedResults(committed=spec.shared_store)
        try:
            rows = Table(table.columns, stream.rows(parts), table.source)
            result: RunResult = await invoke(orchestrator.run, rows, ctx)
        finally:
            ctx.shipped = None
            stream.cancel()
        figures = {"plugin": "dask", "workers": len(client.nthreads()), **stream.figures()}
        if controls is not None:
            figures["controls"] = await asyncio.to_thread(controls.state)
        result.metadata.extra["executor"] = figures
    finally:
        if controls is not None:
            await asyncio.to_thread(controls.close)
    return result


async def _partitions(client: Any, table: Table, options: Any) -> AsyncIterator[Partition]:
    """The table's partitions: planned on the cluster for a source that splits, else its rows in chunks."""
    if isinstance(table.rows, Partitioned):
        planned = table.rows

        def map_fn(fn: Any, items: Sequence[Any]) -> list[Any]:
            return list(client.gather(client.map(fn, items, pure=False)))

        parts = await asyncio.to_thread(planned.partitions, options.partition_bytes, map_fn)
        return _each(parts)
    return shipped_chunks(table.rows, options.partition_rows)


async def _each(parts: Sequence[Partition]) -> AsyncIterator[Partition]:
    for part in parts:
        yield part


_POLL_S = 0.1


def _quiet(waiter: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned wait's outcome (a cancelled partition's CancelledError), so nothing is logged."""
    if not waiter.cancelled():
        waiter.exception()


def _spec(spec: RunSpec) -> RunSpec:
    """The run's spec, as a task's result other tasks depend on."""
    return spec


class _Stream:
    """Submits partitions ``window`` ahead and yields their rows in order, handing each row's result to the runner."""

    def __init__(
        self, client: Any, spec: RunSpec, ctx: OrchestrationContext, window: int, controls: Controls | None
    ) -> None:
        self.client, self.ctx, self.window, self.controls = client, ctx, window, controls
        self.stopped: str | None = None  # a worker's run stopped (the cluster's budget): no further partition
        # one task holds the spec, so it travels once to each worker that needs it, not with every partition;
        # a task, not scattered data, so a worker lost with it is no loss: the scheduler computes it again
        self.spec = client.submit(_spec, spec, pure=False)
        self.pending: deque[tuple[Any, Partition]] = deque()
        self.current: tuple[Any, Partition] | None = None  # the partition being read: running on, if it is slow
        self.submitted = 0
        self.done = 0

    async def rows(self, parts: AsyncIterator[Partition]) -> AsyncIterator[Row]:
        """Every partition's rows in input order, as the results arrive."""
        exhausted = False

        async def top_up() -> None:
            nonlocal exhausted
            while not exhausted and len(self.pending) < self.window and not self._stopping():
                part = await anext(parts, None)
                if part is None:
                    exhausted = True
                    return
                future = self._submit(part)
                self.pending.append((future, part))
                self.submitted += 1

        await top_up()
        while self.pending:
            future, part = self.current = self.pending.popleft()
            result = await self._result(future, part)
            if result is None:  # stopped (Ctrl-C) while waiting: the run takes no more rows
                return
            await top_up()
            shipped = self.ctx.shipped
            assert shipped is not None
            for group, row_id, item, spend in result.spends():
                shipped.add(group, row_id, item, spend)
            self.done += 1
            self.stopped = self.stopped or result.stopped
            for row in self._worked(result) if self.stopped else result.rows:
                yield row
        if self.stopped:  # every partition in flight is in: the run ends stopped, as a local one would
            self.ctx.cancel.set(self.stopped)

    def _stopping(self) -> bool:
        return self.stopped is not None or self.ctx.cancel.is_set()

    def _submit(self, part: Partition) -> Any:
        actor = None if self.controls is None else self.controls.actor
        return self.client.submit(run_partition_task, self.spec, part, actor, pure=False)

    def _worked(self, result: PartitionResult) -> list[Row]:
        """The rows a stopped worker worked out (or the run being resumed finished): the client works none itself."""
        done = {row_id for _, row_id, _, _ in result.results} | {row_id for _, row_id in self.ctx.prior}
        return [row for row in result.rows if row.id in done]

    async def _result(self, future: Any, part: Partition) -> PartitionResult | None:
        """The partition's result, or None once the run is cancelled (its rows are not waited for)."""
        waiter = asyncio.ensure_future(asyncio.to_thread(future.result))
        while not waiter.done():
            if self.ctx.cancel.is_set():
                waiter.add_done_callback(_quiet)  # the thread ends when cancel() cancels the future
                return None
            await asyncio.wait({waiter}, timeout=_POLL_S)
        try:
            result: PartitionResult = waiter.result()
        except ElspethError:
            raise
        except Exception as exc:  # KilledWorker after the allowed retries, or the worker's own error
            rows = f"{part.count:,} rows" if part.count is not None else "its rows"
            raise RunFailed(
                f"executor 'dask': partition {part.label} ({rows}) failed on the cluster: {type(exc).__name__}: {exc}; "
                "the rows of earlier partitions are committed: --resume continues from them"
            ) from exc
        return result

    def cancel(self) -> None:
        """Cancel what is still queued or running on the cluster (the run stopped or failed)."""
        futures = [future for future, _ in self.pending] + ([self.current[0]] if self.current is not None else [])
        if futures:
            self.client.cancel(futures)
        self.pending.clear()
        self.current = None

    def figures(self) -> dict[str, int]:
        """Partitions submitted and consumed, for the run's metadata."""
        return {"partitions_submitted": self.submitted, "partitions_done": self.done}
