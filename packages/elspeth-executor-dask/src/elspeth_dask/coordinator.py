"""The cluster's one rate limiter and budget: a ``dask.distributed`` Actor on one worker.

The coordinator holds the run's own rate limiter, built here from the class and options the client
built (no secret: a limiter's options are rates), and the budget of its cost tracker. Workers never
call it per request: a worker asks for a *lease* of as many slots as it has callers waiting, the
coordinator reserves them from its limiter (``reserve(request)``: the limiter's own pacing, ahead
of time) and answers with each slot's start on the wall clock, and the worker's callers start at
those times. So the cluster's calls follow one limiter's timeline whatever the number of workers
and however long the answer took to arrive; a slot its worker could not use in time is dropped,
never used late in a burst. (Wall clocks: the workers' clocks must agree, as NTP keeps them, to a
few milliseconds; a skew of d seconds lets up to N x d more calls into a second.)

Successes (their tokens and latencies) come back with the next lease, a 429 at once, so the
adaptive limiter's cuts and the token bucket's corrections hold cluster-wide. The budget is lent
out in *allowances*: a worker spends its allowance, then draws another; once the budget is gone no
allowance is granted and every worker stops taking rows, so the run ends over the budget by at most
the calls in flight.

Actor methods run one at a time in the actor's thread, so the state needs no lock.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from elspeth import ConfigError, LLMRequest, LLMResponse, Usage

if TYPE_CHECKING:
    from elspeth import OrchestrationContext

__all__ = ["Controls", "Coordinator", "coordinator_args", "lane_of", "start_controls"]

LEASE_S = 0.1
"""A lease covers at most this many seconds of the limiter's rate (slots reserved ahead of their time)."""

LEAD_S = 0.25
"""Every slot starts this much later than the limiter reserved it: time for the lease to reach its worker."""

ALLOWANCE_SHARE = 0.02
"""Each budget allowance is this share of the budget (smaller near its end)."""


def lane_of(request: LLMRequest) -> dict[str, str]:
    """The request's metadata a limiter keys its lanes by (endpoint and key), as sent to the coordinator."""
    return {key: str(request.metadata[key]) for key in ("endpoint", "key_id") if key in request.metadata}


def _request(lane: dict[str, str], tokens: int, **metadata: Any) -> LLMRequest:
    """A request standing for one a worker will send: its lane and the tokens it takes from the bucket."""
    return LLMRequest("", "", {"max_tokens": tokens} if tokens else {}, {**lane, **metadata})


class Coordinator:
    """Grants rate-limit slots in leases and budget in allowances, for every worker of one run.

    Args:
        limiter: ``(class, options)`` of the run's rate limiter, or None; the class must offer ``reserve``.
        budget: the cost tracker's budget, or None.
        currency: shown in the stop reason.
        spent: what the run spent before (a resumed run's earlier attempts count towards its budget).
    """

    def __init__(
        self, limiter: tuple[type, Any] | None, budget: float | None, currency: str = "USD", spent: float = 0.0
    ) -> None:
        self.limiter = limiter[0](limiter[1]) if limiter is not None else None
        self.budget, self.currency, self.spent = budget, currency, spent
        self.held: dict[str, float] = {}
        self.stopped: str | None = None
        self.figures = {"leases": 0, "slots": 0, "reports": 0, "rate_limited": 0, "allowances": 0}

    def lease(
        self, lane: dict[str, str], wanted: int, tokens: int, reports: list[tuple[dict[str, Any], int, float]]
    ) -> tuple[list[float], int | None, str | None]:
        """Up to ``wanted`` slots for requests of ``tokens`` each: (wall-clock start times, epoch, stop reason).

        Slots are granted after a stop too: the rows already started finish, no new row starts.

        ``reports`` are the worker's successes since its last lease: ``(metadata, tokens used, latency_s)``.
        """
        self._report(reports)
        if self.limiter is None or wanted <= 0:
            return [], None, self.stopped
        rate = float(self.limiter.current_rate(_request(lane, tokens)))
        count = max(1, min(wanted, int(rate * LEASE_S)))
        starts, epoch = [], None
        for _ in range(count):
            request = _request(lane, tokens)
            starts.append(self.limiter.reserve(request))
            epoch = request.metadata.get("rate_epoch", epoch)
        # the limiter's clock to the wall clock every worker shares, the whole timeline LEAD_S later: spacing
        # kept exactly, and the lease reaches its worker before its first slot is due
        wall = time.time() - time.monotonic() + LEAD_S
        self.figures["leases"] += 1
        self.figures["slots"] += count
        return [start + wall for start in starts], epoch, self.stopped

    def _report(self, reports: list[tuple[dict[str, Any], int, float]]) -> None:
        learn = getattr(self.limiter, "on_success", None)
        if learn is None:
            return
        for metadata, used, latency in reports:
            self.figures["reports"] += 1
            response = LLMResponse("", Usage(prompt_tokens=used), latency_s=latency)
            self._call(learn, metadata, response)

    def rate_limited(self, metadata: dict[str, Any], retry_after: float | None) -> None:
        """A worker's call got a 429: the limiter cuts its rate (once per congestion epoch) and honours Retry-After."""
        self.figures["rate_limited"] += 1
        told = getattr(self.limiter, "on_rate_limited", None)
        if told is not None:
            self._call(told, metadata, retry_after)

    def draw(self, holder: str, spent: float) -> tuple[float, str | None]:
        """A worker spent ``spent`` since its last draw: its next allowance, or 0 and why the run stops."""
        self.spent += spent
        self.held[holder] = 0.0
        if self.budget is None:
            return float("inf"), None
        left = self.budget - self.spent - sum(self.held.values())
        if left <= 0 or self.stopped is not None:
            self.stop(f"budget of {self.budget} {self.currency} reached on the cluster ({self.spent:.4f} spent)")
            return 0.0, self.stopped
        grant = min(left, self.budget * ALLOWANCE_SHARE)
        self.held[holder] = grant
        self.figures["allowances"] += 1
        return grant, None

    def release(self, holder: str, spent: float) -> None:
        """A partition ended: what it spent since its last draw counts, its unspent allowance returns."""
        self.spent += spent
        self.held.pop(holder, None)
        if self.budget is not None and self.spent >= self.budget:
            self.stop(f"budget of {self.budget} {self.currency} reached on the cluster ({self.spent:.4f} spent)")

    def stop(self, reason: str) -> None:
        """Stop the run cluster-wide: no slot and no allowance from now on (the first reason is kept)."""
        if self.stopped is None:
            self.stopped = reason

    def _call(self, method: Any, metadata: dict[str, Any], *args: Any) -> None:
        """Call a limiter's ``on_success`` / ``on_rate_limited`` (``async def`` in the builtins) to completion."""
        request = _request({}, int(metadata.get("rate_tokens", 0)), **metadata)
        done = method(request, *args)
        if inspect.isawaitable(done):
            asyncio.run(_awaited(done))  # the builtins' methods await nothing: a loop for the form's sake

    def state(self) -> dict[str, Any]:
        """What the coordinator did, for the run's metadata: leases, slots, spending, why it stopped."""
        return {**self.figures, "spent": round(self.spent, 8), "budget": self.budget, "stopped": self.stopped}


async def _awaited(done: Any) -> Any:
    return await done


def coordinator_args(ctx: OrchestrationContext) -> tuple[Any, ...] | None:
    """What the run's coordinator is built from, or None when the run has no rate limiter and no budget.

    Raises:
        ConfigError: the settings' rate limiter cannot be held cluster-wide (it has no ``reserve``).
    """
    factory = ctx.llm_factory
    limiter = factory.rate_limiter if factory is not None else None
    tracker = factory.cost_tracker if factory is not None else None
    options = getattr(tracker, "options", None)
    budget = getattr(options, "budget", None)
    if limiter is None and budget is None:
        return None
    if limiter is not None and not callable(getattr(limiter, "reserve", None)):
        name = getattr(limiter, "name", type(limiter).__name__)
        raise ConfigError(
            f"rate_limiter: '{name}' cannot hold its limit across the cluster of executor 'dask': it has no "
            "reserve(request) (fixed_window, token_bucket and adaptive do); without it each worker would "
            "allow the whole limit"
        )
    held = (type(limiter), limiter.options) if limiter is not None else None
    return held, budget, str(getattr(options, "currency", "USD")), float(ctx.ledger.cost)


class Controls:
    """The client's handle on the run's coordinator: started before the first partition, closed after the last."""

    def __init__(self, client: Any, args: tuple[Any, ...]) -> None:
        self.future = client.submit(Coordinator, *args, actor=True, pure=False)
        self.actor = self.future.result()
        self.client = client

    def state(self) -> dict[str, Any]:
        """The coordinator's figures (``Coordinator.state``)."""
        state: dict[str, Any] = self.actor.state().result()
        return state

    def close(self) -> None:
        """Let the actor go: the worker holding it drops it."""
        self.client.cancel([self.future])


def start_controls(client: Any, ctx: OrchestrationContext) -> Controls | None:
    """The run's coordinator on the cluster, or None when the settings have no rate limiter and no budget."""
    args = coordinator_args(ctx)
    return Controls(client, args) if args is not None else None
