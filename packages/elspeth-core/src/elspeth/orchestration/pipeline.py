"""The LLM call path: middleware, the rate limiter and client per attempt, middleware again, cost tracker.

Middleware runs once per call, outside the retry loop: a middleware that refuses a prompt (a prompt
shield) is never retried. The rate limiter is asked before every attempt, and told about every
success and every 429 if it wants to know (``on_success``, ``on_rate_limited``), which is how an
adaptive limiter learns.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from elspeth._sync import call
from elspeth.llm_errors import LLMCallFailed, LLMError, LLMRateLimited, LLMTimeout
from elspeth.orchestration.retry import RetryPolicy
from elspeth.orchestration.runner import Cancel
from elspeth.types import LLMRequest, LLMResponse

__all__ = ["LLMPipeline", "cache_key"]

_NO_RETRY = RetryPolicy(max_attempts=1, timeout_s=None)


def cache_key(client: str, options: Any, endpoint: str, request: LLMRequest) -> str:
    """The cache key of a call: a SHA-256 of every input that decides the answer."""
    blob = json.dumps(
        {
            "client": client,
            "options": options,
            "endpoint": endpoint,
            "system": request.system,
            "user": request.user,
            "params": request.params,
        },
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class LLMPipeline:
    """One LLM client wrapped in its middleware, controls and retry policy.

    Args:
        client: the LLM client plugin.
        middleware: middleware plugins, outermost first: ``before_request`` runs in this order,
            ``after_response`` in reverse.
        rate_limiter: waits before each attempt, if given.
        cost_tracker: prices each response, if given; the cost lands in ``response.metrics["cost"]``.
        name: the client's plugin name, for records and errors.
        retry: the retry policy; None means one attempt and no timeout.
        cancel: set when the cost tracker reports a ``stop_reason`` (a budget reached), so the run
            takes no new rows; calls in flight finish.
        cache: a response cache (``lookup(key)``, ``store(key, response)``); a hit skips the rate
            limiter, the client and the cost tracker.
    """

    def __init__(
        self,
        client: Any,
        middleware: Sequence[Any] = (),
        rate_limiter: Any | None = None,
        cost_tracker: Any | None = None,
        name: str = "llm",
        retry: RetryPolicy | None = None,
        cancel: Cancel | None = None,
        cache: Any | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.rate_limiter = rate_limiter
        self.cost_tracker = cost_tracker
        self.retry = retry or _NO_RETRY
        self._before = [m.before_request for m in middleware if hasattr(m, "before_request")]
        self._after = [m.after_response for m in reversed(middleware) if hasattr(m, "after_response")]
        self._on_error = [m.on_error for m in middleware if hasattr(m, "on_error")]
        self.cancel = cancel
        self.cache = cache
        options = getattr(client, "options", None)
        self._options = options.model_dump(mode="json") if isinstance(options, BaseModel) else None
        self.endpoint = str(getattr(client, "endpoint", None) or name)
        self._on_success = getattr(rate_limiter, "on_success", None)
        self._on_rate_limited = getattr(rate_limiter, "on_rate_limited", None)

    async def call(self, request: LLMRequest) -> LLMResponse:
        """Send ``request`` through the whole chain and return the final response.

        Raises:
            LLMCallFailed: the client failed on every attempt allowed (or with an error that is not
                retried); it carries every attempt.
            Exception: whatever a middleware or the cost tracker raised.
        """
        request.metadata.setdefault("llm", self.name)
        request.metadata.setdefault("endpoint", self.endpoint)
        for before in self._before:
            request = await call(before, request)
        key = cache_key(self.name, self._options, self.endpoint, request) if self.cache is not None else None
        response = await call(self.cache.lookup, key) if self.cache is not None else None
        if response is None:
            try:
                response = await self._send(request)
            except LLMCallFailed as failed:
                for on_error in self._on_error:
                    await call(on_error, request, failed)
                raise
            if self.cache is not None:
                await call(self.cache.store, key, response)
        for after in self._after:
            response = await call(after, request, response)
        if response.cached:
            response.metrics["cost"] = 0.0
        elif self.cost_tracker is not None:
            cost = await call(self.cost_tracker.record, request, response)
            if cost is not None:
                response.metrics["cost"] = cost
            reason = getattr(self.cost_tracker, "stop_reason", None)
            if reason and self.cancel is not None:
                self.cancel.set(str(reason))
        return response

    async def _send(self, request: LLMRequest) -> LLMResponse:
        policy = self.retry
        attempts: list[dict[str, Any]] = []
        for attempt in range(1, policy.max_attempts + 1):
            request.metadata["attempt"] = attempt
            if self.rate_limiter is not None:
                await call(self.rate_limiter.acquire, request)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(policy.timeout_s):
                    response: LLMResponse = await call(self.client.generate, request)
            except TimeoutError:
                error: BaseException = LLMTimeout(f"no answer within {policy.timeout_s} s")
            except Exception as exc:  # classified below; anything not an LLMError is never retried
                error = exc
            else:
                response.latency_s = time.perf_counter() - started
                response.attempts = attempt
                if self._on_success is not None:
                    await call(self._on_success, request, response)
                return response
            duration = time.perf_counter() - started
            retryable = isinstance(error, LLMError) and error.retryable
            retry_after = error.retry_after if isinstance(error, LLMError) else None
            if isinstance(error, LLMRateLimited) and self._on_rate_limited is not None:
                await call(self._on_rate_limited, request, retry_after)
            last = attempt == policy.max_attempts
            delay = 0.0 if (last or not retryable) else policy.delay(attempt, retry_after)
            attempts.append(
                {
                    "attempt": attempt,
                    "error": str(error) or type(error).__name__,
                    "error_type": type(error).__name__,
                    "status": getattr(error, "status", None),
                    "retryable": retryable,
                    "duration_s": round(duration, 6),
                    "delay_s": round(delay, 6),
                }
            )
            if last or not retryable:
                why = "attempts exhausted" if retryable else "not retryable"
                raise LLMCallFailed(
                    f"{type(error).__name__}: {error} ({why} after {attempt} attempt{'s' if attempt > 1 else ''})",
                    attempts,
                    error,
                ) from error
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def cost_summary(self) -> Mapping[str, Any] | None:
        """The cost tracker's totals, if there is one."""
        if self.cost_tracker is None:
            return None
        return dict(self.cost_tracker.summary())
