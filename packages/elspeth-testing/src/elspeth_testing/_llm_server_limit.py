"""The test server's enforced capacity: a token bucket of ``max_rps`` calls a second, 429 beyond it."""

from __future__ import annotations

import time


class Capacity:
    """At most ``rps`` chat calls a second (bursts up to ``burst_s`` seconds' worth), as a metered service."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.stamp = time.monotonic()
        self.rps: float | None = None

    def take(self, rps: float, burst_s: float) -> float | None:
        """Spend one call; None if allowed, else the seconds until one is free (the 429's Retry-After).

        Called under the server state's lock, so the bucket needs none of its own.
        """
        now = time.monotonic()
        cap = max(1.0, rps * burst_s)
        if self.rps != rps:  # a new limit starts full
            self.rps, self.tokens, self.stamp = rps, cap, now
        self.tokens = min(cap, self.tokens + (now - self.stamp) * rps)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return round((1 - self.tokens) / rps, 4)
