"""The ``adaptive`` rate limiter: slow start to find the capacity, then AIMD around it.

A fixed additive increase (the first version: 10 calls/s plus 1 a second) takes a minute to reach a
server that answers 1,000 calls/s, punishing the user who turned the safe option on. So a lane
starts in *slow start*: its rate doubles every ``interval_s`` while callers use at least half of it,
until the first sign of congestion (a 429, or latencies rising well above the lane's best). From
then on it is AIMD with a binary climb: a 429 remembers the rate as the lane's *ceiling* and cuts
by ``decrease_factor``; each interval closes half the gap back to the ceiling, and above the ceiling
the rate probes upward additively (by ``increase_rps`` a second, a little more each quiet interval).
So against a server enforcing N calls/s the rate settles just under N and 429s stay rare.

Pacing is FIFO through the lane's lock: each caller waits only for the gap after the previous one
at the *current* rate, so a rate raised a moment ago speeds up the callers already waiting.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth.datatypes import LLMRequest, LLMResponse

_EPOCH = "rate_epoch"  # request.metadata key: the lane's congestion epoch when the request got its slot


@dataclass
class _Lane:
    rate: float
    slow_start: bool = True
    ceiling: float | None = None  # the rate of the last 429
    last_start: float = -1e9
    paused_until: float = 0.0
    tick_start: float = field(default_factory=time.monotonic)
    tick_calls: int = 0
    quiet_ticks: int = 0  # intervals above the ceiling without a 429
    epoch: int = 0  # bumped by every cut; a 429 from an earlier epoch was already answered by that cut
    cuts: int = 0
    ignored: int = 0
    calls: int = 0
    best_latency: float | None = None
    mean_latency: float = 0.0
    samples: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    history: list[dict[str, Any]] = field(default_factory=list)
    last_logged: float = 0.0


class Adaptive:
    """Paces calls per endpoint and key: slow start to the capacity, then AIMD; honours Retry-After.

    Lanes are keyed by ``request.metadata["endpoint"]`` and ``["key_id"]`` (the pipeline sets both from
    the client), so two API keys on one endpoint are paced apart, as the service meters them. The rate
    is cut once per congestion epoch: a 429 for a request that got its slot before the latest cut is
    the same congestion that cut already answered (a burst of 64 simultaneous 429s cuts once, not 64
    times), though its ``Retry-After`` is still honoured.
    """

    name = "adaptive"

    class Options(BaseModel):
        """Options of ``adaptive``."""

        model_config = ConfigDict(extra="forbid")

        initial_rps: float = Field(20.0, gt=0, description="starting rate, calls per second")
        min_rps: float = Field(0.2, gt=0, description="the rate never falls below this")
        max_rps: float = Field(20000.0, gt=0, description="the rate never rises above this")
        interval_s: float = Field(
            0.05, gt=0, description="how often the rate may grow: doubles per interval in slow start"
        )
        increase_rps: float = Field(1.0, gt=0, description="additive increase above the ceiling, per second")
        decrease_factor: float = Field(
            0.8, gt=0, lt=1, description="multiplicative decrease, once per burst of 429s (congestion epoch)"
        )
        latency_factor: float = Field(
            2.0, gt=1, description="slow start ends when the mean latency exceeds the best by this factor"
        )
        history_limit: int = Field(500, ge=1, description="rate changes kept for the run metadata")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lanes: dict[str, _Lane] = {}
        self._t0 = time.monotonic()

    def _lane(self, request: LLMRequest) -> _Lane:
        key = f"{request.metadata.get('endpoint', '')}|{request.metadata.get('key_id', '')}"
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(rate=min(self.options.initial_rps, self.options.max_rps))
            self._note(lane, "start")
        return lane

    def _note(self, lane: _Lane, event: str) -> None:
        if len(lane.history) < self.options.history_limit:
            lane.history.append(
                {"t_s": round(time.monotonic() - self._t0, 3), "rps": round(lane.rate, 3), "event": event}
            )
        lane.last_logged = lane.rate

    def _set_rate(self, lane: _Lane, rate: float) -> None:
        lane.rate = min(self.options.max_rps, max(self.options.min_rps, rate))

    def _tick(self, lane: _Lane, now: float) -> None:
        """At the end of each interval in which callers used at least half the rate, grow it."""
        interval = self.options.interval_s
        if now - lane.tick_start < interval:
            return
        used = lane.tick_calls >= 0.5 * lane.rate * (now - lane.tick_start)
        lane.tick_start, lane.tick_calls = now, 0
        if not used or lane.rate >= self.options.max_rps:
            return
        if lane.slow_start:
            self._set_rate(lane, lane.rate * 2)
            self._note(lane, "slow start: doubled")
            return
        if lane.ceiling is not None and lane.rate < lane.ceiling:
            self._set_rate(lane, lane.rate + max((lane.ceiling - lane.rate) / 2, self.options.increase_rps * interval))
        else:
            lane.quiet_ticks += 1
            self._set_rate(lane, lane.rate + self.options.increase_rps * interval * lane.quiet_ticks)
        if lane.rate >= lane.last_logged * 1.1 or lane.rate == self.options.max_rps != lane.last_logged:
            self._note(lane, "increase")

    def _next_start(self, lane: _Lane, now: float) -> float:
        self._tick(lane, now)
        return max(now, lane.last_start + 1 / lane.rate, lane.paused_until)

    def _take(self, lane: _Lane, start: float, request: LLMRequest) -> None:
        lane.last_start = start
        lane.tick_calls += 1
        lane.calls += 1
        request.metadata[_EPOCH] = lane.epoch

    async def acquire(self, request: LLMRequest) -> None:
        """Wait (in arrival order) for this lane's next slot; the request is stamped with the congestion epoch."""
        lane = self._lane(request)
        async with lane.lock:
            now = time.monotonic()
            start = self._next_start(lane, now)
            if start > now:
                await asyncio.sleep(start - now)
            self._take(lane, start, request)

    def reserve(self, request: LLMRequest) -> float:
        """Take the lane's next slot now, without waiting: the ``time.monotonic()`` at which the call may start.

        What a cluster-wide limiter's coordinator calls to hand slots out in leases (the ``dask``
        executor); the request is stamped with the congestion epoch, as :meth:`acquire` stamps it.
        """
        lane = self._lane(request)
        start = self._next_start(lane, time.monotonic())
        self._take(lane, start, request)
        return start

    def current_rate(self, request: LLMRequest) -> float:
        """The rate of the request's lane, per second (the ``rate_limiter_rate`` gauge)."""
        return self._lane(request).rate

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Learn the lane's latency; in slow start, latencies well above the best end the growth."""
        lane = self._lane(request)
        latency = response.latency_s
        if latency <= 0:
            return
        lane.best_latency = latency if lane.best_latency is None else min(lane.best_latency, latency)
        lane.samples += 1
        lane.mean_latency += (latency - lane.mean_latency) * (0.1 if lane.samples > 10 else 1 / lane.samples)
        congested = lane.mean_latency > self.options.latency_factor * lane.best_latency + 0.01
        if lane.slow_start and lane.samples >= 16 and congested:
            lane.slow_start = False
            lane.ceiling = lane.rate
            self._note(lane, f"latency rising ({lane.mean_latency:.3f} s against {lane.best_latency:.3f} s)")

    async def on_rate_limited(self, request: LLMRequest, retry_after: float | None) -> None:
        """Honour Retry-After on this lane; cut the rate unless this epoch's congestion was already answered."""
        lane = self._lane(request)
        if retry_after:
            lane.paused_until = max(lane.paused_until, time.monotonic() + retry_after)
        if request.metadata.get(_EPOCH, lane.epoch) < lane.epoch:
            lane.ignored += 1
            return
        lane.ceiling = lane.rate
        factor = 0.5 if lane.slow_start else self.options.decrease_factor
        lane.slow_start = False
        lane.quiet_ticks = 0
        self._set_rate(lane, lane.rate * factor)
        lane.epoch += 1
        lane.cuts += 1
        self._note(lane, f"429 (retry after {retry_after} s)" if retry_after else "429")

    def summary(self) -> dict[str, Any]:
        """Each lane's rate, phase, ceiling, calls, cuts, 429s already answered by a cut, and history of changes."""
        return {
            key: {
                "rps": round(lane.rate, 3),
                "phase": "slow start" if lane.slow_start else "aimd",
                "ceiling_rps": None if lane.ceiling is None else round(lane.ceiling, 3),
                "calls": lane.calls,
                "cuts": lane.cuts,
                "ignored_429s": lane.ignored,
                "history": lane.history,
            }
            for key, lane in self._lanes.items()
        }
