"""A BatchedClient in an LLMPipeline over the real openai client: middleware, cache, batch prices, live retries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from elspeth import BatchedClient, LLMCallFailed, LLMPipeline, LLMRequest, LLMResponse, MemoryJournal, RetryPolicy
from elspeth.builtins.controls import PriceTable
from elspeth.cache import CacheFile, ResponseCache
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_server import LLMTestServer


class Redact:
    """Request middleware: what it changes must be what the batch sends."""

    name = "redact"

    def before_request(self, request: LLMRequest) -> LLMRequest:
        request.user = request.user.replace("secret", "[redacted]")
        return request


def prices() -> PriceTable:
    return PriceTable(PriceTable.Options(prices={"*": {"input": 2, "output": 8, "batch_input": 1, "batch_output": 4}}))


def ask(pipeline: LLMPipeline, prompts: list[str]) -> list[LLMResponse | BaseException]:
    async def main() -> list[LLMResponse | BaseException]:
        calls = [pipeline.call(LLMRequest("Be brief.", p, metadata={"row_id": str(i)})) for i, p in enumerate(prompts)]
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(main())


def batched(options: dict[str, Any], run_tag: str = "run-9", **kw: Any) -> BatchedClient:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    return BatchedClient(client, MemoryJournal(), run_tag=run_tag, gather_s=0.05, poll_interval=0.01, **kw)


def test_rows_go_out_as_one_batch_through_middleware_priced_at_batch_rates(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    table = prices()
    pipeline = LLMPipeline(batched(options), middleware=[Redact()], cost_tracker=table, retry=RetryPolicy())
    answers = ask(pipeline, [f"review {i} secret" for i in range(5)])

    assert all(isinstance(a, LLMResponse) for a in answers)
    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1
    assert keyed_server.requests("/chat/completions") == []  # nothing live
    [upload] = [r for r in keyed_server.requests("/v1/files") if r.method == "POST"]
    assert upload.status == 200
    live = OpenAIClient(OpenAIClient.Options.model_validate(options))
    first = answers[0]
    assert isinstance(first, LLMResponse)
    expected = asyncio.run(live.generate(LLMRequest("Be brief.", "review 0 [redacted]")))
    assert first.content == expected.content  # the middleware's request, not the raw one, was batched
    usage = first.usage
    assert first.metrics["cost"] == pytest.approx((usage.prompt_tokens * 1 + usage.completion_tokens * 4) / 1e6)


def test_cache_hits_are_never_submitted(options: dict[str, Any], keyed_server: LLMTestServer, tmp_path: Path) -> None:
    cache = ResponseCache(ResponseCache.Options())
    cache.file = CacheFile(tmp_path / "cache.sqlite")
    ask(LLMPipeline(batched(options), cache=cache, retry=RetryPolicy()), ["a one", "a two"])
    keyed_server.reset()
    answers = ask(
        LLMPipeline(batched(options, "run-10"), cache=cache, retry=RetryPolicy()), ["a one", "a two", "a three"]
    )
    assert all(isinstance(a, LLMResponse) for a in answers), answers
    [create] = [r for r in keyed_server.requests("/v1/batches") if r.method == "POST"]
    assert create.status == 200
    [upload] = [r for r in keyed_server.requests("/v1/files") if r.method == "POST"]
    assert upload.status == 200
    assert sum(1 for a in answers if isinstance(a, LLMResponse) and a.cached) == 2
    cache.close()


def test_failed_and_expired_items_retried_live_when_asked(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.script(["500"], match="review 1")
    pipeline = LLMPipeline(batched(options, retry_live=True), retry=RetryPolicy(initial_delay_s=0.01))
    answers = ask(pipeline, ["review 0", "review 1", "review 2 EXPIRE-IN-BATCH"])
    assert all(isinstance(a, LLMResponse) for a in answers), answers
    live = keyed_server.requests("/chat/completions")
    assert sorted(r.prompt for r in live) == ["review 1", "review 2 EXPIRE-IN-BATCH"]
    assert [a.attempts for a in answers if isinstance(a, LLMResponse)] == [1, 2, 2]


def test_without_retry_live_a_failed_item_fails_its_row_naming_the_batch(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    keyed_server.script(["500"], match="review 1")
    pipeline = LLMPipeline(batched(options), retry=RetryPolicy(initial_delay_s=0.01))
    answers = ask(pipeline, ["review 0", "review 1", "review 2 EXPIRE-IN-BATCH"])
    assert isinstance(answers[0], LLMResponse)
    assert isinstance(answers[1], LLMCallFailed)
    assert "batch batch_000001" in str(answers[1])
    assert "retry_live" in str(answers[1])
    assert isinstance(answers[2], LLMCallFailed)
    assert "expired" in str(answers[2])
    assert keyed_server.requests("/chat/completions") == []
