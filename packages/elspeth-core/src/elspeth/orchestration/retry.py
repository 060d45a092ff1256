"""The one retry layer every LLM call goes through (SDK retries are switched off by the clients).

Retried: errors whose ``retryable`` is true (:mod:`elspeth.llm_errors`: 429, 5xx, timeouts, dropped
connections). Never retried: 400/401/403, content-policy refusals, and anything a client raises that
is not an :class:`~elspeth.llm_errors.LLMError`. The wait before attempt *n+1* is
``min(max_delay_s, initial_delay_s * multiplier**(n-1))``, scaled by a random factor in [0.5, 1] when
``jitter`` is on, and never shorter than the server's ``Retry-After``.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RetryPolicy"]


class RetryPolicy(BaseModel):
    """How LLM calls are retried (the ``retry`` section of the settings)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(4, ge=1, le=100, description="attempts per call, the first included")
    initial_delay_s: float = Field(0.5, ge=0, description="wait before the second attempt")
    multiplier: float = Field(2.0, ge=1, description="each wait is this many times the previous one")
    max_delay_s: float = Field(30.0, ge=0, description="no wait is longer than this (except a Retry-After)")
    jitter: bool = Field(True, description="scale each wait by a random factor in [0.5, 1] so callers spread out")
    timeout_s: float | None = Field(60.0, gt=0, description="give up on one attempt after this long (null: never)")
    honour_retry_after: bool = Field(True, description="wait at least as long as the server's Retry-After")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))
        if self.jitter:
            base *= (rng or random).uniform(0.5, 1.0)
        if self.honour_retry_after and retry_after is not None:
            base = max(base, retry_after)
        return base
