"""Rate limiters and the price table, alone and in a run."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from elspeth import Ledger, LLMPipeline, LLMRequest, LLMResponse, Usage
from elspeth.builtins.controls import Adaptive, FixedWindow, PriceTable, TokenBucket, estimate_tokens


def request(endpoint: str = "http://a", user: str = "u", **params) -> LLMRequest:
    return LLMRequest(system="", user=user, params=params, metadata={"endpoint": endpoint})


async def acquire_times(limiter, n: int, req: LLMRequest | None = None) -> list[float]:
    start = time.monotonic()
    stamps = []

    async def one() -> None:
        await limiter.acquire(req or request())
        stamps.append(time.monotonic() - start)

    await asyncio.gather(*(one() for _ in range(n)))
    return sorted(stamps)


def test_fixed_window_never_lets_more_than_its_limit_into_one_window():
    limiter = FixedWindow(FixedWindow.Options(requests=5, per_seconds=0.1))
    stamps = asyncio.run(acquire_times(limiter, 12))
    assert stamps[-1] >= 0.2  # 12 calls at 5 per window need three windows
    for t in stamps:
        assert sum(1 for s in stamps if t <= s < t + 0.1 - 0.005) <= 5


def test_token_bucket_paces_requests_after_the_burst():
    limiter = TokenBucket(TokenBucket.Options(requests_per_minute=1200, burst_seconds=0.25))  # 20/s, burst 5
    stamps = asyncio.run(acquire_times(limiter, 15))
    assert stamps[4] < 0.05  # the burst goes at once
    assert stamps[-1] >= (15 - 5) / 20 * 0.95  # the rest at 20 per second


def test_token_bucket_limits_tokens_and_charges_actual_usage():
    limiter = TokenBucket(TokenBucket.Options(requests_per_minute=60000, tokens_per_minute=6000, burst_seconds=1))
    big = request(user="x" * 400)  # about 100 tokens; the bucket holds 100 per second
    assert estimate_tokens(big) == 100
    assert estimate_tokens(request(user="x" * 400, max_tokens=50)) == 150

    async def go() -> float:
        await limiter.acquire(big)
        await limiter.on_success(big, LLMResponse(content="", usage=Usage(100, 100)))  # 100 more than reserved
        start = time.monotonic()
        await limiter.acquire(big)
        return time.monotonic() - start

    assert asyncio.run(go()) >= 1.5  # owes 100 tokens and needs 100 more, at 100 a second


def test_adaptive_halves_on_429_waits_for_retry_after_and_climbs_back_to_the_ceiling():
    limiter = Adaptive(Adaptive.Options(initial_rps=100, increase_rps=5, interval_s=0.02))
    req = request()

    async def go() -> float:
        await limiter.acquire(req)
        await limiter.on_rate_limited(req, 0.2)
        start = time.monotonic()
        await limiter.acquire(req)
        return time.monotonic() - start

    waited = asyncio.run(go())
    assert waited >= 0.19
    state = limiter.summary()["http://a|"]
    assert (state["rps"], state["ceiling_rps"], state["phase"]) == (50, 100, "aimd")  # slow start ends halved

    async def busy(seconds: float) -> None:  # callers using all of the rate
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await limiter.acquire(request())

    asyncio.run(busy(0.3))
    rps = limiter.summary()["http://a|"]["rps"]
    assert 90 <= rps <= 101, "half the gap to the ceiling closes per interval, then it probes slowly"
    events = [h["event"] for h in limiter.summary()["http://a|"]["history"]]
    assert events[0] == "start"
    assert events[1].startswith("429")
    assert "increase" in events


def test_adaptive_slow_start_doubles_while_used_and_stops_growing_when_not():
    limiter = Adaptive(Adaptive.Options(initial_rps=50, interval_s=0.02))

    async def busy(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await limiter.acquire(request())

    asyncio.run(busy(0.2))
    grown = limiter.summary()["http://a|"]
    assert grown["phase"] == "slow start"
    assert grown["rps"] >= 50 * 2**4, "about ten intervals of full use double the rate each time"
    doublings = sum(h["event"] == "slow start: doubled" for h in grown["history"])
    assert doublings == round(math.log2(grown["rps"] / 50))

    async def idle() -> None:  # one call every 30 ms uses nowhere near half the rate
        for _ in range(5):
            await limiter.acquire(request())
            await asyncio.sleep(0.03)

    asyncio.run(idle())
    assert limiter.summary()["http://a|"]["rps"] == grown["rps"]


def test_adaptive_slow_start_ends_when_latency_rises():
    limiter = Adaptive(Adaptive.Options(initial_rps=10))
    req = request()
    for latency in [0.05] * 16 + [0.5] * 6:
        asyncio.run(limiter.on_success(req, LLMResponse(content="", latency_s=latency)))
    lane = limiter.summary()["http://a|"]
    assert (lane["phase"], lane["cuts"], lane["ceiling_rps"]) == ("aimd", 0, 10)
    assert lane["history"][-1]["event"].startswith("latency rising")


def test_adaptive_keeps_separate_lanes_per_endpoint():
    limiter = Adaptive(Adaptive.Options(initial_rps=10))
    asyncio.run(limiter.on_rate_limited(request("http://a"), None))
    asyncio.run(limiter.acquire(request("http://b")))
    summary = limiter.summary()
    assert summary["http://a|"]["rps"] == 5
    assert summary["http://b|"]["rps"] == 10


def test_price_table_prices_by_exact_model_prefix_or_default():
    table = PriceTable(
        PriceTable.Options(
            prices={
                "gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25},
                "gpt-4o-mini": {"input": 0.15, "output": 0.6},
                "*": {"input": 1, "output": 1},
            }
        )
    )

    ledger = Ledger()  # the run's, which the pipeline writes each priced call into and the table reads

    def cost(model: str, usage: Usage) -> float | None:
        class Answer:
            async def generate(self, request: LLMRequest) -> LLMResponse:
                return LLMResponse(content="", usage=usage, model=model)

        response = asyncio.run(LLMPipeline(Answer(), cost_tracker=table, ledger=ledger).call(request()))
        return response.metrics.get("cost")

    assert cost("gpt-4o", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert cost("gpt-4o-2024-08-06", Usage(0, 1_000_000)) == pytest.approx(10)
    assert cost("gpt-4o-mini-2024", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)  # longest prefix wins
    assert cost("gpt-4o", Usage(1_000_000, 0, cached_tokens=400_000)) == pytest.approx(0.6 * 2.5 + 0.4 * 1.25)
    assert cost("llama", Usage(500_000, 500_000)) == pytest.approx(1.0)
    summary = table.summary()
    assert summary["calls"] == 5
    assert summary["total_cost"] == pytest.approx(2.5 + 10 + 0.75 + 2.0 + 1.0)


def test_price_table_counts_unpriced_models():
    table = PriceTable(PriceTable.Options(prices={"a": {"input": 1, "output": 1}}))
    assert asyncio.run(table.record(request(), LLMResponse(content="", model="b"))) is None
    assert table.summary()["unpriced_calls"] == {"b": 1}


def keyed(endpoint: str, key_id: str) -> LLMRequest:
    return LLMRequest(system="", user="u", metadata={"endpoint": endpoint, "key_id": key_id})


def test_adaptive_keeps_separate_lanes_per_key_on_one_endpoint():
    limiter = Adaptive(Adaptive.Options(initial_rps=10))

    async def go() -> None:
        for req in (keyed("http://a", "key-1"), keyed("http://a", "key-2")):
            await limiter.acquire(req)
        await limiter.on_rate_limited(keyed("http://a", "key-1"), None)

    asyncio.run(go())
    summary = limiter.summary()
    assert set(summary) == {"http://a|key-1", "http://a|key-2"}
    assert summary["http://a|key-1"]["rps"] == 5
    assert summary["http://a|key-2"]["rps"] == 10


def test_adaptive_cuts_once_per_burst_of_429s_and_again_for_a_later_one():
    limiter = Adaptive(Adaptive.Options(initial_rps=1000, decrease_factor=0.5, interval_s=10))  # no growth here
    burst = [request() for _ in range(64)]

    async def go() -> None:
        await asyncio.gather(*(limiter.acquire(r) for r in burst))  # all sent before any 429 came back
        await asyncio.gather(*(limiter.on_rate_limited(r, None) for r in burst))

    asyncio.run(go())
    lane = limiter.summary()["http://a|"]
    assert lane["rps"] == 500, "64 simultaneous 429s are one congestion event: halve once"
    assert (lane["cuts"], lane["ignored_429s"]) == (1, 63)
    assert [h["event"] for h in lane["history"]] == ["start", "429"]

    later = request()

    async def again() -> None:
        await limiter.acquire(later)  # sent after the cut, at the new rate
        await limiter.on_rate_limited(later, None)

    asyncio.run(again())
    assert limiter.summary()["http://a|"]["rps"] == 250


def test_adaptive_honours_retry_after_even_for_a_429_it_does_not_cut_for():
    limiter = Adaptive(Adaptive.Options(initial_rps=1000))
    first, second = request(), request()

    async def go() -> float:
        await limiter.acquire(first)
        await limiter.acquire(second)
        await limiter.on_rate_limited(first, None)
        await limiter.on_rate_limited(second, 0.2)  # same epoch: no second cut, but the pause holds
        start = time.monotonic()
        await limiter.acquire(request())
        return time.monotonic() - start

    assert asyncio.run(go()) >= 0.19
    assert limiter.summary()["http://a|"]["rps"] == 500
