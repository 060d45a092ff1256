"""The one retry layer every LLM call goes through (SDK retries are switched off by the clients).

Retried: errors whose ``retryable`` is true (:mod:`elspeth.llm_errors`: 429, 5xx, timeouts, dropped
connections). Never retried: 400/401/403, content-policy refusals, and anything a client raises that
is not an :class:`~elspeth.llm_errors.LLMError`. The wait before attempt *n+1* is
``min(max_delay_s, initial_delay_s * multiplier**(n-1))``, scaled by a random factor in [0.5, 1] when
``jitter`` is on; when the server sends a ``Retry-After`` (capped at ``max_retry_after_s``, so a
server asking for an hour cannot stall a run for an hour) that is the wait instead.

Middleware that calls a service of its own (a content-safety screen) retries through
:func:`retry_call` with the run's policy, so one setting governs every retry of the run.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from elspeth.llm_errors import LLMError, LLMTimeout

__all__ = ["RetryPolicy", "retry_call"]

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How LLM calls are retried (the ``retry`` section of the settings)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(8, ge=1, le=100, description="attempts per call, the first included")
    initial_delay_s: float = Field(0.5, ge=0, description="wait before the second attempt")
    multiplier: float = Field(2.0, ge=1, description="each wait is this many times the previous one")
    max_delay_s: float = Field(30.0, ge=0, description="no wait is longer than this (except a Retry-After)")
    jitter: bool = Field(True, description="scale each wait by a random factor in [0.5, 1] so callers spread out")
    timeout_s: float | None = Field(60.0, gt=0, description="give up on one attempt after this long (null: never)")
    stall_factor: float | None = Field(
        10.0,
        gt=1,
        description="abandon (and retry) an attempt that has received nothing after this many times the endpoint's"
        " recent 90th-percentile latency (null: only timeout_s); never the last attempt, never a started stream",
    )
    stall_min_s: float = Field(1.0, gt=0, description="an attempt is never abandoned early before this many seconds")
    stall_max_s: float | None = Field(None, gt=0, description="nor later than this (null: timeout_s)")
    honour_retry_after: bool = Field(True, description="wait at least as long as the server's Retry-After")
    max_retry_after_s: float = Field(
        60.0, ge=0, description="a Retry-After longer than this is cut to it (the wait and the rate limiter's pause)"
    )

    def cap_retry_after(self, retry_after: float | None) -> float | None:
        """The server's ``Retry-After`` cut to ``max_retry_after_s`` (None stays None)."""
        return None if retry_after is None else min(retry_after, self.max_retry_after_s)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        A server's ``Retry-After`` (capped) is the wait when it is honoured: the server said when it
        will answer, so a longer exponential backoff would only leave it idle.
        """
        capped = self.cap_retry_after(retry_after)
        if self.honour_retry_after and capped is not None:
            return capped
        base = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))
        if self.jitter:
            base *= (rng or random).uniform(0.5, 1.0)
        return base


async def retry_call(policy: RetryPolicy, attempt: Callable[[], Awaitable[T]], where: str = "the call") -> T:
    """Await ``attempt()`` under ``policy``: retry retryable LLM errors with backoff, each try under the timeout.

    Args:
        policy: the run's retry policy.
        attempt: makes one try; raises an :class:`~elspeth.llm_errors.LLMError` on failure.
        where: names the service in a timeout's message.

    Returns:
        What the first successful try returned.

    Raises:
        LLMError: the last try's error, once it is not retryable or no attempt is left. Any other
            exception propagates at once.

    Example::

        reply = await retry_call(policy, lambda: service.post(body), "azure_content_safety at https://...")
    """
    import asyncio  # here, not at the top: `import elspeth` must stay cheap for `elspeth plugins list`

    number = 0
    while True:
        number += 1
        try:
            async with asyncio.timeout(policy.timeout_s):
                return await attempt()
        except TimeoutError as exc:
            error: LLMError = LLMTimeout(f"{where}: no answer within {policy.timeout_s} s (retry.timeout_s)")
            error.__cause__ = exc
        except LLMError as exc:
            error = exc
        if not error.retryable or number >= policy.max_attempts:
            raise error
        await asyncio.sleep(policy.delay(number, error.retry_after))
