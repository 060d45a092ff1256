"""The spending ledger: the LLM pipeline writes every call into it; each row's share goes with the row."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import Ledger, LLMPipeline, LLMRequest, LLMResponse, Spend, Usage
from elspeth.builtins.controls import PriceTable
from elspeth.llm_errors import LLMCallFailed, LLMRateLimited
from elspeth.orchestration.retry import RetryPolicy

RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0, jitter=False, timeout_s=None)
PRICES = PriceTable.Options.model_validate({"prices": {"*": {"input": 1_000_000, "output": 1_000_000}}})


class Client:
    """Answers with 3 prompt and 2 completion tokens; a prompt in ``busy`` gets a 429 first, one in ``down`` always."""

    def __init__(self) -> None:
        self.busy: set[str] = set()
        self.down: set[str] = set()
        self.sent = 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.sent += 1
        if request.user in self.down:
            raise LLMRateLimited("slow down")
        if request.user in self.busy:
            self.busy.discard(request.user)
            raise LLMRateLimited("slow down")
        return LLMResponse(content="ok", usage=Usage(3, 2), model="m")


class MemoryCache:
    def __init__(self) -> None:
        self.kept: dict[str, LLMResponse] = {}

    def lookup(self, key: str) -> LLMResponse | None:
        hit = self.kept.get(key)
        return None if hit is None else LLMResponse(hit.content, hit.usage, model=hit.model, cached=True)

    def store(self, key: str, response: LLMResponse) -> None:
        self.kept[key] = response


class RefuseAnswers:
    def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        raise ValueError("the answer is refused")


def pipeline(ledger: Ledger, client: Client, **kwargs: Any) -> LLMPipeline:
    return LLMPipeline(client, cost_tracker=PriceTable(PRICES), retry=RETRY, ledger=ledger, **kwargs)


def test_live_answers_retries_and_failed_calls_are_counted_once_each() -> None:
    ledger, client = Ledger(), Client()
    client.busy.add("b")
    client.down.add("c")
    llm = pipeline(ledger, client)

    async def main() -> None:
        await llm.call(LLMRequest(system="", user="a"))
        await llm.call(LLMRequest(system="", user="b"))  # answered on its second attempt
        with pytest.raises(LLMCallFailed):
            await llm.call(LLMRequest(system="", user="c"))

    asyncio.run(main())
    spent = ledger.attempt
    assert (spent.llm_calls, spent.attempts, spent.cache_hits) == (2, 1 + 2 + 3, 0)
    assert (spent.prompt_tokens, spent.completion_tokens) == (6, 4)
    assert spent.cost == pytest.approx(10.0)
    assert spent.priced
    assert client.sent == 6


def test_a_cache_hit_spends_nothing_and_a_refused_answer_was_still_paid_for() -> None:
    ledger = Ledger()
    cached = pipeline(ledger, Client(), cache=MemoryCache())
    refusing = pipeline(ledger, Client(), middleware=[RefuseAnswers()])

    async def main() -> None:
        await cached.call(LLMRequest(system="", user="a"))
        again = await cached.call(LLMRequest(system="", user="a"))
        assert again.cached
        with pytest.raises(ValueError, match="refused"):
            await refusing.call(LLMRequest(system="", user="z"))

    asyncio.run(main())
    spent = ledger.attempt
    assert (spent.llm_calls, spent.cache_hits, spent.prompt_tokens) == (2, 1, 6)
    assert spent.cost == pytest.approx(10.0)


def test_each_row_keeps_only_its_own_calls_while_rows_run_concurrently() -> None:
    ledger = Ledger()
    llm = pipeline(ledger, Client())
    spends: dict[str, Spend] = {}

    async def row(name: str, calls: int) -> None:
        with ledger.row() as spend:
            for i in range(calls):
                await llm.call(LLMRequest(system="", user=f"{name}{i}"))
                await asyncio.sleep(0)
        spends[name] = spend

    async def main() -> None:
        await asyncio.gather(row("x", 1), row("y", 3), row("z", 2))
        await llm.call(LLMRequest(system="", user="outside any row"))

    asyncio.run(main())
    assert {name: s.llm_calls for name, s in spends.items()} == {"x": 1, "y": 3, "z": 2}
    assert ledger.attempt.llm_calls == 7
    assert Spend.from_dict(spends["y"].to_dict()).to_dict() == spends["y"].to_dict()


def test_the_run_totals_count_the_earlier_attempts() -> None:
    from elspeth.totals import RunTotals

    ledger = Ledger(RunTotals(cost=1.5, prompt_tokens=30, completion_tokens=20, llm_calls=10))
    asyncio.run(pipeline(ledger, Client()).call(LLMRequest(system="", user="a")))
    total = ledger.total(duration_s=2.0)
    assert (total.llm_calls, total.prompt_tokens, total.duration_s) == (11, 33, 2.0)
    assert ledger.cost == pytest.approx(6.5)
