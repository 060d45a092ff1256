"""Faults cost only what they must: a backoff lends its slot, a stalled attempt is abandoned early, a stream never."""

from __future__ import annotations

import asyncio
import time

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, Usage
from elspeth.datatypes import Row
from elspeth.llm_errors import LLMCallFailed, LLMRateLimited
from elspeth.orchestration.retry import RetryPolicy
from elspeth.orchestration.runner import run_rows
from elspeth.orchestration.stall import reply_started


class Counting:
    """A client answering in ``latency`` s; prompts in ``limited`` get one 429 (Retry-After 0.3 s) first."""

    def __init__(self, latency: float, limited: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.latency, self.limited = latency, set(limited)
        self.in_flight = self.peak = 0
        self.done: dict[str, float] = {}

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if request.user in self.limited:
                self.limited.discard(request.user)
                raise LLMRateLimited("slow down", status=429, retry_after=0.3)
            await asyncio.sleep(self.latency)
            self.done[request.user] = time.monotonic()
            return LLMResponse(content="ok", usage=Usage(1, 1))
        finally:
            self.in_flight -= 1


def run(client: Counting, rows: int, concurrency: int, policy: RetryPolicy) -> float:
    pipeline = LLMPipeline(client, retry=policy)

    async def handle(row: Row) -> None:
        await pipeline.call(LLMRequest(system="", user=str(row.index)))

    async def main() -> float:
        started = time.monotonic()
        await run_rows((Row(index=i, id=str(i), data={}) for i in range(rows)), handle, concurrency=concurrency)
        return started

    return asyncio.run(main())


def test_a_row_waiting_out_retry_after_lends_its_slot_and_calls_in_flight_stay_bounded():
    client = Counting(0.02, limited={"0", "1"})
    policy = RetryPolicy(max_attempts=3, initial_delay_s=0.01, jitter=False, timeout_s=5)
    started = run(client, rows=40, concurrency=2, policy=policy)
    assert client.peak <= 2, "concurrency bounds the calls in flight"
    assert len(client.done) == 40
    others = sorted(t for user, t in client.done.items() if user not in {"0", "1"})
    # both slots' rows wait 0.3 s; with the slots held, nothing else could run in that time
    assert sum(t - started < 0.28 for t in others) >= 10, "other rows ran while rows 0 and 1 waited"
    # coming back, the two are served before rows not yet begun: done well before the end
    assert max(client.done["0"], client.done["1"]) < others[-1]


class Hanging:
    """Answers in 10 ms; the prompts in ``hang`` hang once (``stream``: after their first chunk)."""

    def __init__(self, hang: set[str], stream: bool = False) -> None:
        self.hang, self.stream, self.calls = set(hang), stream, 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if request.user in self.hang:
            self.hang.discard(request.user)
            if self.stream:
                reply_started()
                await asyncio.sleep(0.6)  # a long reply that is arriving: never abandoned
                return LLMResponse(content="long", usage=Usage(1, 1))
            await asyncio.sleep(30)
        await asyncio.sleep(0.01)
        return LLMResponse(content="ok", usage=Usage(1, 1))


def calls(client: Hanging, policy: RetryPolicy, users: list[str]) -> list[LLMResponse]:
    pipeline = LLMPipeline(client, retry=policy)

    async def main() -> list[LLMResponse]:
        return [await pipeline.call(LLMRequest(system="", user=u)) for u in users]

    return asyncio.run(main())


POLICY = RetryPolicy(max_attempts=3, initial_delay_s=0.01, timeout_s=20, stall_factor=10, stall_min_s=0.2)


def test_an_attempt_silent_far_longer_than_the_endpoint_takes_is_abandoned_early_and_retried():
    client = Hanging({"hang"})
    started = time.monotonic()
    responses = calls(client, POLICY, [str(i) for i in range(25)] + ["hang"])
    elapsed = time.monotonic() - started
    assert responses[-1].content == "ok"
    assert responses[-1].attempts == 2
    assert elapsed < 25 * 0.02 + 0.2 + 1.5, f"the hang cost {elapsed:.2f} s, not about stall_min_s"


def test_before_the_endpoint_is_learned_or_with_stall_off_only_the_timeout_applies():
    client = Hanging({"hang"})
    policy = POLICY.model_copy(update={"timeout_s": 0.5})
    started = time.monotonic()
    [response] = calls(client, policy, ["hang"])  # nothing learned yet: the full 0.5 s timeout
    assert response.attempts == 2
    assert time.monotonic() - started >= 0.5
    off = POLICY.model_copy(update={"stall_factor": None, "timeout_s": 0.8})
    client = Hanging({"hang"})
    started = time.monotonic()
    responses = calls(client, off, [str(i) for i in range(25)] + ["hang"])
    assert responses[-1].attempts == 2
    assert time.monotonic() - started >= 0.8


def test_a_reply_that_has_started_streaming_is_never_abandoned():
    client = Hanging({"hang"}, stream=True)
    responses = calls(client, POLICY, [str(i) for i in range(25)] + ["hang"])
    assert responses[-1].content == "long", "a started reply was thrown away"
    assert responses[-1].attempts == 1


def test_the_last_attempt_is_never_abandoned_early():
    client = Hanging({"hang"})
    policy = POLICY.model_copy(update={"max_attempts": 1, "timeout_s": 0.7})
    started = time.monotonic()
    with pytest.raises(LLMCallFailed, match=r"no answer within 0\.7 s"):
        calls(client, policy, [str(i) for i in range(25)] + ["hang"])
    assert time.monotonic() - started >= 0.7


def test_an_attempt_begun_before_the_endpoint_was_learned_gets_the_limit_once_it_is():
    client = Hanging({"hang"})
    pipeline = LLMPipeline(client, retry=POLICY)

    async def main() -> list[LLMResponse]:
        hung = asyncio.create_task(pipeline.call(LLMRequest(system="", user="hang")))
        await asyncio.sleep(0)
        for i in range(25):  # learned while the hang is in flight
            await pipeline.call(LLMRequest(system="", user=str(i)))
        return [await hung]

    started = time.monotonic()
    [response] = asyncio.run(main())
    assert response.attempts == 2
    assert time.monotonic() - started < 3, "the hang waited out the full 20 s timeout"


def test_an_attempt_begun_before_the_endpoint_was_learned_gets_the_limit_from_then_not_from_its_start():
    from elspeth.orchestration.stall import StallWatch

    watch = StallWatch(factor=10, min_s=0.2, max_s=None)

    async def main() -> str:
        async def first() -> str:
            async with watch.attempt(5.0):
                await asyncio.sleep(0.45)  # 0.3 s of the client's own start, then an answer 0.15 s after learning
                return "answered"

        task = asyncio.create_task(first())
        await asyncio.sleep(0.3)
        for _ in range(20):  # the endpoint is learned while the first attempt is in flight: limit 0.2 s
            watch.learn(0.01)
        assert watch.limit(5.0) == 0.2
        return await task

    assert asyncio.run(main()) == "answered"  # its clock started at the learning: not abandoned at once


def test_an_attempt_begun_before_the_endpoint_was_learned_is_still_abandoned_if_it_hangs():
    from elspeth.orchestration.stall import StallWatch

    watch = StallWatch(factor=10, min_s=0.2, max_s=None)

    async def main() -> float:
        async def hanging() -> None:
            async with watch.attempt(5.0):
                await asyncio.sleep(30)

        task = asyncio.create_task(hanging())
        await asyncio.sleep(0.1)
        learned = time.monotonic()
        for _ in range(20):
            watch.learn(0.01)
        with pytest.raises(TimeoutError):
            await task
        return time.monotonic() - learned

    assert 0.15 < asyncio.run(main()) < 1.5  # abandoned about 0.2 s after the limit was learned, not after 5 s
