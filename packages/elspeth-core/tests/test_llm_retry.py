"""The one retry layer: what is retried, how long it waits, and what a failure carries."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, Usage
from elspeth.builtins.middleware import PromptShield
from elspeth.llm_errors import (
    LLMCallFailed,
    LLMContentRefused,
    LLMRateLimited,
    LLMRequestRejected,
    LLMServerError,
    LLMTimeout,
    parse_retry_after,
)
from elspeth.orchestration.retry import RetryPolicy
from elspeth.orchestration.runner import Cancel

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.001, max_delay_s=0.01, jitter=False, timeout_s=1.0)


class ScriptedClient:
    """A client whose replies are a script: an exception to raise, or text to return."""

    def __init__(self, *script: Any) -> None:
        self.script = deque(script)
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        step = self.script.popleft() if self.script else "ok"
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return LLMResponse(content="slow", usage=Usage(1, 1))
        return LLMResponse(content=step, usage=Usage(10, 5), model="m")


def call(pipeline: LLMPipeline) -> LLMResponse:
    return asyncio.run(pipeline.call(LLMRequest(system="s", user="u", metadata={"row_id": "1"})))


def test_rate_limited_then_success_waits_for_retry_after():
    client = ScriptedClient(LLMRateLimited("slow down", status=429, retry_after=0.05), "fine")
    started = time.perf_counter()
    response = call(LLMPipeline(client, retry=FAST))
    assert response.content == "fine"
    assert response.attempts == 2
    assert client.calls == 2
    assert time.perf_counter() - started >= 0.05


@pytest.mark.parametrize("error", [LLMServerError("boom", status=503), LLMTimeout("late")])
def test_retryable_errors_use_every_attempt_and_record_each(error):
    client = ScriptedClient(*[error] * 10)
    with pytest.raises(LLMCallFailed) as caught:
        call(LLMPipeline(client, retry=FAST))
    attempts = caught.value.attempts
    assert client.calls == 4
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert all(a["retryable"] for a in attempts)
    assert attempts[-1]["delay_s"] == 0
    assert "attempts exhausted after 4 attempts" in str(caught.value)


@pytest.mark.parametrize(
    "error",
    [LLMRequestRejected("bad request", status=400), LLMRequestRejected("no key", status=401), LLMContentRefused("no")],
)
def test_client_errors_and_refusals_are_never_retried(error):
    client = ScriptedClient(error, "never reached")
    with pytest.raises(LLMCallFailed) as caught:
        call(LLMPipeline(client, retry=FAST))
    assert client.calls == 1
    assert caught.value.attempts[0]["retryable"] is False
    assert "not retryable" in str(caught.value)


def test_unknown_exceptions_are_not_retried():
    client = ScriptedClient(KeyError("surprise"), "never")
    with pytest.raises(LLMCallFailed):
        call(LLMPipeline(client, retry=FAST))
    assert client.calls == 1


def test_a_hung_attempt_times_out_and_is_retried():
    client = ScriptedClient(5.0, "answered")
    policy = RetryPolicy(max_attempts=2, initial_delay_s=0, jitter=False, timeout_s=0.05)
    response = call(LLMPipeline(client, retry=policy))
    assert response.content == "answered"
    assert response.attempts == 2


def test_backoff_grows_exponentially_is_capped_and_honours_retry_after():
    policy = RetryPolicy(initial_delay_s=0.5, multiplier=2, max_delay_s=3, jitter=False)
    assert [policy.delay(n, None) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, 7.0) == 7.0
    jittered = RetryPolicy(initial_delay_s=1, jitter=True)
    rng = random.Random(1)
    samples = [jittered.delay(1, None, rng) for _ in range(200)]
    assert min(samples) >= 0.5
    assert max(samples) <= 1.0
    assert len(set(samples)) > 100


def test_middleware_runs_once_per_call_and_a_refusal_never_reaches_the_client():
    shield = PromptShield(PromptShield.Options(denied_terms=["secret plan"]))
    client = ScriptedClient("x")
    pipeline = LLMPipeline(client, [shield], retry=FAST)
    with pytest.raises(LLMContentRefused, match=r"SECRET PLAN.*user prompt"):
        asyncio.run(pipeline.call(LLMRequest(system="", user="our SECRET PLAN")))
    assert client.calls == 0


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = 0
        self.limited: list[float | None] = []
        self.succeeded = 0

    async def acquire(self, request: LLMRequest) -> None:
        self.acquired += 1

    async def on_rate_limited(self, request: LLMRequest, retry_after: float | None) -> None:
        self.limited.append(retry_after)

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        self.succeeded += 1


def test_rate_limiter_is_asked_before_every_attempt_and_told_of_429s():
    limiter = CountingLimiter()
    client = ScriptedClient(LLMRateLimited("x", retry_after=0.01), LLMServerError("y"), "ok")
    call(LLMPipeline(client, rate_limiter=limiter, retry=FAST))
    assert limiter.acquired == 3
    assert limiter.limited == [0.01]
    assert limiter.succeeded == 1


class ErrorWatcher:
    def __init__(self) -> None:
        self.errors: list[LLMCallFailed] = []

    async def on_error(self, request: LLMRequest, error: LLMCallFailed) -> None:
        self.errors.append(error)


def test_middleware_sees_calls_that_failed_for_good():
    watcher = ErrorWatcher()
    with pytest.raises(LLMCallFailed):
        call(LLMPipeline(ScriptedClient(*[LLMServerError("down")] * 4), [watcher], retry=FAST))
    assert len(watcher.errors) == 1
    assert len(watcher.errors[0].attempts) == 4


class Budget:
    def __init__(self) -> None:
        self.stop_reason: str | None = None

    async def record(self, request: LLMRequest, response: LLMResponse) -> float:
        self.stop_reason = "budget reached"
        return 0.25

    def summary(self) -> dict[str, Any]:
        return {}


def test_a_cost_trackers_stop_reason_cancels_the_run_but_keeps_the_answer():
    cancel = Cancel()
    response = call(LLMPipeline(ScriptedClient("paid"), cost_tracker=Budget(), cancel=cancel))
    assert response.content == "paid"
    assert response.metrics["cost"] == 0.25
    assert cancel.is_set()
    assert cancel.reason == "budget reached"


def test_parse_retry_after_reads_seconds_milliseconds_and_dates():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": future}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None


def test_a_huge_retry_after_is_capped_for_the_wait_and_for_the_rate_limiter():
    limiter = CountingLimiter()
    client = ScriptedClient(LLMRateLimited("come back tomorrow", status=429, retry_after=86_400), "ok")
    policy = RetryPolicy(max_attempts=2, initial_delay_s=0, jitter=False, max_retry_after_s=0.05)
    started = time.perf_counter()
    response = call(LLMPipeline(client, rate_limiter=limiter, retry=policy))
    assert response.content == "ok"
    assert limiter.limited == [0.05]
    assert 0.05 <= time.perf_counter() - started < 5
