"""A worker's side of the cluster-wide controls: the rate limiter and budget its partition's calls go through.

:func:`run_controlled` is the task each partition runs: the run is rebuilt from its settings as
:func:`elspeth.run_partition` always does (every plugin, the LLM client's key read from this
worker's environment), then its rate limiter and cost tracker are swapped for a
:class:`ClusterLimiter` and a :class:`ClusterBudget` that take their slots and allowances from the
run's :class:`~elspeth_dask.coordinator.Coordinator`. Nothing of the coordinator is on a call's path
but a lease every few slots: callers waiting on one worker share one lease request.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from elspeth import PartitionResult, invoke, run_partition
from elspeth_dask.coordinator import lane_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from elspeth import Cancel, LLMRequest, LLMResponse, OrchestrationContext, Partition, RunSpec

__all__ = ["ClusterBudget", "ClusterLimiter", "run_controlled"]

GRACE_S = 0.02
"""A slot more than this late (the worker's loop was busy) is dropped: used late, slots would bunch into a burst."""

_KEYS = ("endpoint", "key_id", "rate_epoch", "rate_tokens")


class ClusterLimiter:
    """Paces this partition's calls on slots leased from the coordinator, with the limiter's own timeline.

    Args:
        local: the rate limiter this worker built from the settings (it tells a request's tokens).
        coordinator: the run's coordinator actor.
        cancel: the partition's cancel, set when the coordinator says the run stopped (its budget).
    """

    def __init__(self, local: Any, coordinator: Any, cancel: Cancel) -> None:
        self.name = getattr(local, "name", "rate_limiter")
        self._tokens_for = getattr(local, "tokens_for", None)
        self.coordinator, self.cancel = coordinator, cancel
        self.slots: dict[str, deque[tuple[float, int | None]]] = {}
        self.waiting: dict[str, int] = {}
        self.reports: list[tuple[dict[str, Any], int, float]] = []
        self.dropped = 0
        self._lock = asyncio.Lock()  # one lease request at a time: the callers waiting meanwhile share the next

    async def acquire(self, request: LLMRequest) -> None:
        """Wait for this request's slot on the cluster's timeline (a lease is asked for when none is left)."""
        lane = lane_of(request)
        key = "|".join(lane.values())
        need = int(self._tokens_for(request)) if self._tokens_for is not None else 0
        self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            while True:
                start, epoch = await self._slot(key, lane, need)
                pause = start - time.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                if time.time() - start <= GRACE_S:
                    break
                self.dropped += 1  # this process was not run in time (a loaded machine): the slot has passed
        finally:
            self.waiting[key] -= 1
        if epoch is not None:
            request.metadata["rate_epoch"] = epoch
        if need:
            request.metadata["rate_tokens"] = need

    async def _slot(self, key: str, lane: dict[str, str], need: int) -> tuple[float, int | None]:
        slot = self._take(key)
        while slot is None:
            async with self._lock:
                if not self.slots.get(key):
                    await self._lease(key, lane, need)
            slot = self._take(key)
        return slot

    def _take(self, key: str) -> tuple[float, int | None] | None:
        slots = self.slots.get(key)
        late = time.time() - GRACE_S
        while slots:
            slot = slots.popleft()
            if slot[0] >= late:
                return slot
            self.dropped += 1
        return None

    async def _lease(self, key: str, lane: dict[str, str], need: int) -> None:
        wanted = max(1, self.waiting.get(key, 1))
        reports, self.reports = self.reports, []
        starts, epoch, stopped = await asyncio.to_thread(
            lambda: self.coordinator.lease(lane, wanted, need, reports).result()
        )
        self.slots.setdefault(key, deque()).extend((start, epoch) for start in starts)
        if stopped:
            self.cancel.set(stopped)

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Keep the call's tokens and latency for the coordinator's limiter (sent with the next lease)."""
        metadata = {key: request.metadata[key] for key in _KEYS if key in request.metadata}
        self.reports.append((metadata, response.usage.total_tokens, response.latency_s))

    async def on_rate_limited(self, request: LLMRequest, retry_after: float | None) -> None:
        """Tell the coordinator at once (its limiter cuts the cluster's rate); the slots leased here are dropped."""
        lane = lane_of(request)
        self.slots.pop("|".join(lane.values()), None)
        metadata = {key: request.metadata[key] for key in _KEYS if key in request.metadata}
        await asyncio.to_thread(lambda: self.coordinator.rate_limited(metadata, retry_after).result())

    def flush(self) -> None:
        """Send the successes not yet reported (the partition ended)."""
        if self.reports:
            reports, self.reports = self.reports, []
            self.coordinator.lease({}, 0, 0, reports).result()


class ClusterBudget:
    """Prices calls with the worker's own cost tracker and spends the cluster's budget in allowances.

    Args:
        inner: the cost tracker this worker built from the settings (it prices each answer).
        coordinator: the run's coordinator actor.
        holder: this partition's name at the coordinator.
        cancel: the partition's cancel, set once the cluster's budget is gone.
    """

    def __init__(self, inner: Any, coordinator: Any, holder: str, cancel: Cancel) -> None:
        self.inner, self.coordinator, self.holder, self.cancel = inner, coordinator, holder, cancel
        self.name = getattr(inner, "name", "cost_tracker")
        self.unreported = 0.0
        self.allowance = 0.0
        self.reason: str | None = None

    def use_ledger(self, ledger: Any) -> None:
        """Hand the worker's ledger to the inner tracker, as the pipeline does for a local one."""
        share = getattr(self.inner, "use_ledger", None)
        if share is not None:
            share(ledger)

    @property
    def stop_reason(self) -> str | None:
        """Why the cluster takes no new rows (its budget is gone), as the coordinator said; None until then."""
        return self.reason

    async def record(self, request: LLMRequest, response: LLMResponse) -> float | None:
        """Price the answer; once this partition's allowance is spent, report it and draw the next one."""
        cost: float | None = await invoke(self.inner.record, request, response)
        self.unreported += cost or 0.0
        if self.unreported >= self.allowance and self.reason is None:
            await asyncio.to_thread(self.draw)
        return cost

    def draw(self) -> None:
        """Report what was spent since the last draw and take the next allowance (blocking: an actor call)."""
        spent, self.unreported = self.unreported, 0.0
        self.allowance, reason = self.coordinator.draw(self.holder, spent).result()
        if reason:
            self.reason = reason
            self.cancel.set(reason)

    def release(self) -> None:
        """Report the rest of this partition's spending; its unspent allowance goes back to the cluster."""
        self.coordinator.release(self.holder, self.unreported).result()
        self.unreported = 0.0

    def summary(self) -> dict[str, Any]:
        """The inner tracker's summary (this partition's calls)."""
        return dict(self.inner.summary())


class _Installed:
    """The controls of one partition's run, installed before its first row and released after its last."""

    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator
        self.limiter: ClusterLimiter | None = None
        self.budget: ClusterBudget | None = None

    def __call__(self, ctx: OrchestrationContext) -> None:
        factory = ctx.llm_factory
        if factory is None:
            return
        limiter, tracker = factory.rate_limiter, factory.cost_tracker
        if limiter is not None:
            limiter = self.limiter = ClusterLimiter(limiter, self.coordinator, ctx.cancel)
        if tracker is not None:
            tracker = self.budget = ClusterBudget(tracker, self.coordinator, uuid.uuid4().hex, ctx.cancel)
            self.budget.draw()  # the first allowance; a run already over its budget starts no row here
        factory.use_controls(limiter, tracker)

    def release(self) -> None:
        if self.limiter is not None:
            self.limiter.flush()
        if self.budget is not None:
            self.budget.release()


def run_controlled(
    spec: RunSpec, partition: Partition, coordinator: Any, stop: Callable[[], str | None] | None = None
) -> PartitionResult:
    """Run one partition (see :func:`elspeth.run_partition`) with the cluster's rate limit and budget."""
    installed = _Installed(coordinator)
    try:
        return run_partition(spec, partition, stop, installed)
    finally:
        installed.release()
