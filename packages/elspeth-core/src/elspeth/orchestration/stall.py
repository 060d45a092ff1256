"""Abandoning an attempt that has received nothing for far longer than the endpoint has been taking.

A hung connection used to cost the whole ``retry.timeout_s`` (60 s by default) while the endpoint
answered in 50 ms. Each pipeline learns its endpoint's latencies from its own successes (the last
200); once it has ``_LEARN`` of them, an attempt with nothing received after ``stall_factor`` times
their 90th percentile (never less than ``stall_min_s``, never more than ``stall_max_s`` or the
timeout) is abandoned as an ``LLMTimeout`` and retried. A client that streams calls
:func:`reply_started` at its first chunk: from then on only the full ``timeout_s`` applies, so a
reply that has begun is never thrown away (its tokens are being paid for).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["StallWatch", "reply_started"]

_LEARN = 20


@dataclass(eq=False)
class _Attempt:
    timeout: asyncio.Timeout
    start: float
    full_deadline: float | None
    receiving: bool = False
    early: bool = True
    limited: bool = False  # begun under a learned limit (else its clock starts when the first limit is learned)


_CURRENT: ContextVar[_Attempt | None] = ContextVar("elspeth_attempt", default=None)


def reply_started() -> None:
    """Tell the pipeline that the current attempt's reply has begun arriving (a client calls it at its first chunk).

    From then on the attempt is never abandoned early: only ``retry.timeout_s`` applies. Outside an
    attempt it does nothing.
    """
    attempt = _CURRENT.get()
    if attempt is not None and not attempt.receiving:
        attempt.receiving = True
        attempt.timeout.reschedule(attempt.full_deadline)


@dataclass
class StallWatch:
    """One endpoint's recent latencies and the early limit they give an attempt."""

    factor: float | None
    min_s: float
    max_s: float | None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    abandoned: int = 0
    _limit: float | None = None
    _since: int = 0
    _in_flight: set[_Attempt] = field(default_factory=set)  # attempts that may still be abandoned early

    def learn(self, latency_s: float) -> None:
        """Remember one success's latency (the limit is recomputed every tenth)."""
        self.recent.append(latency_s)
        self._since += 1
        if len(self.recent) >= _LEARN and (self._limit is None or self._since >= 10):
            ordered = sorted(self.recent)
            p90 = ordered[int(0.9 * (len(ordered) - 1))]
            self._limit, self._since = p90, 0
            early = self.limit(None)
            now = asyncio.get_running_loop().time()
            for state in self._in_flight:  # begun under an older (or no) limit: held to the new one if sooner
                # one begun before any limit may have waited on the client's own start (its SDK, its first
                # connection, a busy loop): it gets the limit from now, not from when it began
                begun = state.start if state.limited else now
                deadline = state.timeout.when()
                if early is not None and not state.receiving and (deadline is None or begun + early < deadline):
                    state.timeout.reschedule(begun + early)
                    state.start, state.limited = begun, True

    def limit(self, timeout_s: float | None) -> float | None:
        """Seconds after which an attempt that has received nothing is abandoned (None: only the timeout)."""
        if self.factor is None or self._limit is None:
            return None
        early = max(self.min_s, self.factor * self._limit)
        if self.max_s is not None:
            early = min(early, self.max_s)
        return early if timeout_s is None or early < timeout_s else None

    @asynccontextmanager
    async def attempt(self, timeout_s: float | None, early: bool = True) -> AsyncIterator[_Attempt]:
        """Run one attempt under the timeout, cut short to :meth:`limit` (if ``early``) until :func:`reply_started`.

        Raises ``TimeoutError`` either way; :meth:`was_early` tells which.
        """
        now = asyncio.get_running_loop().time()
        full = None if timeout_s is None else now + timeout_s
        early_s = self.limit(timeout_s) if early else None
        async with asyncio.timeout_at(full if early_s is None else now + early_s) as timeout:
            state = _Attempt(timeout, now, full, early=early, limited=early_s is not None)
            if early and self.factor is not None:
                self._in_flight.add(state)
            token = _CURRENT.set(state)
            try:
                yield state
            finally:
                _CURRENT.reset(token)
                self._in_flight.discard(state)

    def was_early(self, state: _Attempt, started: float, timeout_s: float | None) -> bool:
        """Whether a timed-out attempt was abandoned early (rather than at the full timeout)."""
        early = timeout_s is None or time.perf_counter() - started < timeout_s * 0.999
        if early and not state.receiving:
            self.abandoned += 1
            return True
        return False
