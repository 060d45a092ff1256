"""The LLM call path: middleware, the rate limiter and client per attempt, the cost tracker, middleware again.

Middleware runs once per call, outside the retry loop: a middleware that refuses a prompt (a prompt
shield) is never retried. The rate limiter is asked before every attempt, and told about every
success and every 429 if it wants to know (``on_success``, ``on_rate_limited``), which is how an
adaptive limiter learns.

A call the service answered is priced as soon as the answer arrives, before any middleware sees it:
an answer that a middleware then refuses was still paid for, and counts towards the budget.

Every middleware learns how each call ended, through whichever of these it defines (each a plain or
``async`` method):

- ``on_success(request, response)``: the answer passed every middleware and goes back to the caller;
- ``on_error(request, failed)``: the client failed for good (an :class:`~elspeth.llm_errors.LLMCallFailed`
  with every attempt);
- ``on_refused(request, error, response)``: a middleware refused the request (``response`` is None:
  nothing was sent) or the answer (``response`` is the paid answer, its cost in ``metrics["cost"]``).

Exactly one of them is called per call, on every middleware, including the one that refused and
those whose ``before_request`` never ran because an earlier one refused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from elspeth._sync import invoke
from elspeth.datatypes import LLMRequest, LLMResponse
from elspeth.ledger import Ledger
from elspeth.llm_errors import LLMCallFailed, LLMError, LLMRateLimited, LLMTimeout
from elspeth.observing import Observation, current_row_id
from elspeth.orchestration.retry import RetryPolicy
from elspeth.orchestration.runner import Cancel, waiting_out
from elspeth.orchestration.stall import StallWatch
from elspeth.scrub import scrub_exception, scrub_response, scrub_secrets

__all__ = ["LLMPipeline", "cache_key", "key_identity"]

_NO_RETRY = RetryPolicy(max_attempts=1, timeout_s=None)


def cache_key(client: str, options: Any, endpoint: str, request: LLMRequest) -> str:
    """The cache key of a call: a SHA-256 of every input that decides the answer.

    A repeated sample (``request.metadata["epoch"]``, set by an experiment's ``epochs``) is keyed apart
    from the others, so that epoch 2 is a new answer rather than epoch 1's replayed; a call without an
    epoch keeps the key it always had.
    """
    identity = {
        "client": client,
        "options": options,
        "endpoint": endpoint,
        "system": request.system,
        "user": request.user,
        "params": request.params,
    }
    epoch = request.metadata.get("epoch")
    if epoch is not None:
        identity["epoch"] = epoch
    blob = json.dumps(
        identity,
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def key_identity(secret: str | None) -> str:
    """A short, non-reversible name for an API key, safe to log: ``key-`` and 12 hex digits of a salted SHA-256.

    Clients expose it as ``key_id`` (``"entra"`` for a token credential); the pipeline puts it in
    ``request.metadata["key_id"]``, so an adaptive rate limiter keeps one lane per endpoint and key.

    Example::

        self.key_id = key_identity(os.environ.get(options.api_key_env))
    """
    if not secret:
        return "none"
    return "key-" + hashlib.sha256(b"elspeth key id\x00" + secret.encode()).hexdigest()[:12]


class LLMPipeline:
    """One LLM client wrapped in its middleware, controls and retry policy.

    Args:
        client: the LLM client plugin; its ``endpoint`` and ``key_id`` (if it has them) go into every
            request's metadata.
        middleware: middleware plugins, outermost first: ``before_request`` runs in this order,
            ``after_response`` in reverse. A middleware with ``use_retry_policy(policy)`` is handed
            the retry policy, for calls it makes to a service of its own.
        rate_limiter: waits before each attempt, if given.
        cost_tracker: prices each answer as it arrives, if given; the cost lands in ``response.metrics["cost"]``.
        name: the client's plugin name, for records and errors.
        retry: the retry policy; None means one attempt and no timeout.
        cancel: set when the cost tracker reports a ``stop_reason`` (a budget reached), so the run
            takes no new rows; calls in flight finish.
        cache: a response cache (``lookup(key)``, ``store(key, response)``, optionally ``discard(key)``);
            a hit skips the rate limiter, the client and the cost tracker. A request whose metadata has
            ``refresh_cache`` set skips the lookup (a re-ask) and its live answer replaces the cached one.
        ledger: the run's spending ledger, told of every call as it ends (a live answer, priced, before any
            middleware may refuse it; a cache hit; a call whose attempts all failed). Default: one of its own.
        observation: where each attempt is reported (``llm_attempt_finished``) and the rate limiter's rate
            (``gauge_reported``); None, the default, costs nothing.
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
        ledger: Ledger | None = None,
        observation: Observation | None = None,
    ) -> None:
        self.client = client
        self.observation = observation
        self.ledger = ledger if ledger is not None else Ledger()
        self.name = name
        self.use_controls(rate_limiter, cost_tracker)
        self.retry = retry or _NO_RETRY
        self.stall = StallWatch(self.retry.stall_factor, self.retry.stall_min_s, self.retry.stall_max_s)
        self._before = [m.before_request for m in middleware if hasattr(m, "before_request")]
        self._after = [m.after_response for m in reversed(middleware) if hasattr(m, "after_response")]
        self._on_mw_success = [m.on_success for m in middleware if hasattr(m, "on_success")]
        self._on_error = [m.on_error for m in middleware if hasattr(m, "on_error")]
        self._on_refused = [m.on_refused for m in middleware if hasattr(m, "on_refused")]
        for m in middleware:
            bind = getattr(m, "use_retry_policy", None)
            if bind is not None:
                bind(self.retry)
        self.cancel = cancel
        self.cache = cache
        options = getattr(client, "options", None)
        self._options = options.model_dump(mode="json") if isinstance(options, BaseModel) else None
        self.endpoint = str(getattr(client, "endpoint", None) or name)
        self.key_id = str(getattr(client, "key_id", None) or "")
        # a client that gathers requests into provider batches (elspeth.batch_gather) says which attempts
        # wait on a batch: those have no attempt timeout, no stall watch and no rate limiter
        self._deferred = getattr(client, "defers", None)

    def use_controls(self, rate_limiter: Any | None, cost_tracker: Any | None) -> None:
        """Wait on ``rate_limiter`` and price with ``cost_tracker`` from now on (a cluster worker's shared ones)."""
        share = getattr(cost_tracker, "use_ledger", None)
        if share is not None:  # the tracker reads the run's spending (its budget) from the ledger
            share(self.ledger)
        self.rate_limiter = rate_limiter
        self.cost_tracker = cost_tracker
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
        if self.key_id:
            request.metadata.setdefault("key_id", self.key_id)
        try:
            for before in self._before:
                request = await invoke(before, request)
        except Exception as exc:
            scrub_exception(exc)  # a middleware service's error is text from outside
            await self._refused(request, exc, None)
            raise
        key = cache_key(self.name, self._options, self.endpoint, request) if self.cache is not None else None
        if key is not None:
            request.metadata["cache_key"] = key  # what discard() evicts if the caller rejects the answer
        fresh = bool(request.metadata.get("refresh_cache"))
        response = None if self.cache is None or fresh else await invoke(self.cache.lookup, key)
        hit = response is not None
        if response is None:
            try:
                response = await self._send(request)
            except LLMCallFailed as failed:
                self.ledger.failed(len(failed.attempts))
                for on_error in self._on_error:
                    await invoke(on_error, request, failed)
                raise
            await self._price(request, response)
            if self.observation is not None:  # after pricing, so the attempt carries its cost
                self._report(request, response.attempts, "ok", None, response.latency_s, 0.0, response)
            if self.cache is not None:
                await invoke(self.cache.store, key, response)
        if response.cached:
            response.metrics["cost"] = 0.0
        if hit:
            self.ledger.answered(response)  # a cache hit: nothing spent
        try:
            for after in self._after:
                response = await invoke(after, request, response)
        except Exception as exc:
            scrub_exception(exc)
            await self._refused(request, exc, response)
            raise
        for on_success in self._on_mw_success:
            await invoke(on_success, request, response)
        return response

    async def discard(self, request: LLMRequest) -> None:
        """Evict the cached answer to ``request``, which the caller rejected, so that no later call replays it.

        The key is the one :meth:`call` put in ``request.metadata["cache_key"]``; without a cache, or a
        cache without ``discard(key)``, nothing happens.
        """
        key = request.metadata.get("cache_key")
        evict = getattr(self.cache, "discard", None)
        if key is not None and evict is not None:
            await invoke(evict, key)

    async def _price(self, request: LLMRequest, response: LLMResponse) -> None:
        """Price a paid answer, write it into the ledger, and stop the run if that reached the budget.

        All before any middleware may refuse the answer: it was paid for either way.
        """
        if self.cost_tracker is None:
            self.ledger.answered(response)
            return
        cost = await invoke(self.cost_tracker.record, request, response)
        if cost is not None:
            response.metrics["cost"] = cost
        self.ledger.answered(response)  # paid, whatever a middleware then makes of it
        reason = getattr(self.cost_tracker, "stop_reason", None)
        if reason and self.cancel is not None:
            self.cancel.set(str(reason))

    async def _refused(self, request: LLMRequest, error: Exception, response: LLMResponse | None) -> None:
        for on_refused in self._on_refused:
            await invoke(on_refused, request, error, response)

    async def _attempt(self, request: LLMRequest, last: bool) -> LLMResponse | BaseException:
        """One attempt under the timeout; unless it is the ``last``, abandoned early when nothing came for too long."""
        policy, watch = self.retry, self.stall
        started = time.perf_counter()
        state = None
        deferred = self._deferred is not None and self._deferred(request)  # waits on a provider batch: hours
        try:
            async with watch.attempt(None if deferred else policy.timeout_s, early=not (last or deferred)) as state:
                response: LLMResponse = await invoke(self.client.generate, request)
        except TimeoutError:
            waited = time.perf_counter() - started
            if state is not None and watch.was_early(state, started, policy.timeout_s):
                return LLMTimeout(
                    f"nothing received after {waited:.2f} s, far longer than this endpoint has been taking:"
                    " abandoned early (retry.stall_factor)"
                )
            return LLMTimeout(f"no answer within {policy.timeout_s} s")
        except Exception as exc:  # classified by the caller; anything not an LLMError is never retried
            return scrub_exception(exc)  # a server may echo the key in its error: scrub before recording
        scrub_response(response)
        response.latency_s = time.perf_counter() - started
        if not deferred:
            watch.learn(response.latency_s)
        return response

    async def _send(self, request: LLMRequest) -> LLMResponse:
        policy = self.retry
        attempts: list[dict[str, Any]] = []
        backoffs = 0  # waits chosen by backoff: a Retry-After wait does not lengthen the next backoff
        for attempt in range(1, policy.max_attempts + 1):
            request.metadata["attempt"] = attempt
            if self.rate_limiter is not None and not (self._deferred is not None and self._deferred(request)):
                await invoke(self.rate_limiter.acquire, request)
                if self.observation is not None:
                    self._report_rate(request)
            started = time.perf_counter()
            result = await self._attempt(request, last=attempt == policy.max_attempts)
            if isinstance(result, LLMResponse):
                result.attempts = attempt
                if self._on_success is not None:
                    await invoke(self._on_success, request, result)
                return result
            error = result
            duration = time.perf_counter() - started
            retryable = isinstance(error, LLMError) and error.retryable
            retry_after = policy.cap_retry_after(error.retry_after if isinstance(error, LLMError) else None)
            if isinstance(error, LLMRateLimited) and self._on_rate_limited is not None:
                await invoke(self._on_rate_limited, request, retry_after)
            last = attempt == policy.max_attempts
            delay = 0.0 if (last or not retryable) else policy.delay(backoffs + 1, retry_after)
            backoffs += retry_after is None or not policy.honour_retry_after
            text = scrub_secrets(str(error))
            attempts.append(
                {
                    "attempt": attempt,
                    "error": text or type(error).__name__,
                    "error_type": type(error).__name__,
                    "status": getattr(error, "status", None),
                    "retryable": retryable,
                    "duration_s": round(duration, 6),
                    "delay_s": round(delay, 6),
                }
            )
            if self.observation is not None:
                outcome = "failed" if (last or not retryable) else "retry"
                self._report(request, attempt, outcome, error, duration, delay, None)
            if last or not retryable:
                why = "attempts exhausted" if retryable else "not retryable"
                raise LLMCallFailed(
                    f"{type(error).__name__}: {text} ({why} after {attempt} attempt{'s' if attempt > 1 else ''})",
                    attempts,
                    error,
                ) from error
            await waiting_out(delay)  # the row's concurrency slot serves another row meanwhile
        raise AssertionError("unreachable: the loop returns or raises")

    def _report(
        self,
        request: LLMRequest,
        attempt: int,
        outcome: str,
        error: BaseException | None,
        latency_s: float,
        wait_s: float,
        response: LLMResponse | None,
    ) -> None:
        """One attempt to the observers; an answered one is reported once priced, with its ``cost``."""
        assert self.observation is not None
        usage = response.usage if response is not None else None
        self.observation.call(
            "llm_attempt_finished",
            row_id=current_row_id(),
            llm=self.name,
            attempt=attempt,
            outcome=outcome,
            status=getattr(error, "status", None),
            error_type=type(error).__name__ if error is not None else None,
            latency_s=latency_s,
            wait_s=wait_s,
            tokens={
                "prompt": usage.prompt_tokens if usage else 0,
                "completion": usage.completion_tokens if usage else 0,
            },
            cost=response.metrics.get("cost") if response is not None else None,
            request=request,
            response=response,
        )

    def _report_rate(self, request: LLMRequest) -> None:
        rate = getattr(self.rate_limiter, "current_rate", None)
        if rate is not None and self.observation is not None:
            value = rate(request)
            if value is not None:
                self.observation.gauge("rate_limiter_rate", value)

    def cost_summary(self) -> Mapping[str, Any] | None:
        """The cost tracker's totals, if there is one."""
        if self.cost_tracker is None:
            return None
        return dict(self.cost_tracker.summary())
