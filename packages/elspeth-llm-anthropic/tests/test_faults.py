"""Each error class the Anthropic API sends, through the real SDK to the test server: mapped, retried or not."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from elspeth_llm_anthropic import AnthropicClient

from elspeth import (
    LLMConnectionError,
    LLMContentRefused,
    LLMPipeline,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    scrub_secrets,
)
from elspeth.llm_errors import LLMCallFailed
from elspeth.orchestration.retry import RetryPolicy
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=2.0)
REQUEST = LLMRequest("Reply with a score.", "the kettle")


def client(options: dict[str, Any], **more: Any) -> AnthropicClient:
    return AnthropicClient(AnthropicClient.Options.model_validate({**options, **more}))


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ("429:3", LLMRateLimited, 3.0),
        ("529", LLMServerError, None),
        ("503", LLMServerError, None),
        ("500", LLMServerError, None),
        ("drop", LLMConnectionError, None),
        ("400", LLMRequestRejected, None),
        ("401", LLMRequestRejected, None),
        ("403", LLMRequestRejected, None),
        ("content_filter", LLMContentRefused, None),
    ],
)
def test_each_fault_maps_to_its_elspeth_error(
    keyed_server: LLMTestServer, options: dict[str, Any], fault: str, error: type, retry_after: float | None
) -> None:
    keyed_server.script([fault])
    with pytest.raises(error) as caught:
        asyncio.run(client(options).generate(REQUEST))
    assert "anthropic claude-test at http://127.0.0.1" in str(caught.value)
    if retry_after is not None:
        assert caught.value.retry_after == retry_after
    if fault == "529":
        assert "Overloaded" in str(caught.value) or "529" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "retried"),
    [
        ("429:0.01", True),
        ("529", True),
        ("503", True),
        ("drop", True),
        ("400", False),
        ("401", False),
        ("403", False),
        ("content_filter", False),
    ],
)
def test_the_pipeline_retries_only_what_may_succeed_later(
    keyed_server: LLMTestServer, options: dict[str, Any], fault: str, retried: bool
) -> None:
    keyed_server.script([fault])
    pipeline = LLMPipeline(client(options), retry=FAST_RETRY, name="anthropic")

    async def call() -> LLMResponse | LLMCallFailed:
        try:
            return await pipeline.call(REQUEST)
        except LLMCallFailed as exc:
            return exc

    outcome = asyncio.run(call())
    outcomes = [r.outcome for r in keyed_server.requests() if r.prompt == "the kettle"]
    if retried:
        assert isinstance(outcome, LLMResponse), outcome
        assert outcomes == [fault.partition(":")[0], "ok"]
    else:
        assert isinstance(outcome, LLMCallFailed)
        assert "not retryable after 1 attempt" in str(outcome)
        assert len(outcomes) == 1


def test_usage_counts_prompt_caching_and_latency(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    cached = client(options, cache_system=True)
    long_system = "Judge the review strictly. " * 200
    request = LLMRequest(long_system, "the kettle")

    async def twice() -> list[LLMResponse]:
        pipeline = LLMPipeline(cached, retry=FAST_RETRY, name="anthropic")
        return [await pipeline.call(request), await pipeline.call(request)]

    first, second = asyncio.run(twice())
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == len(long_system) // 4
    assert second.usage.prompt_tokens == first.usage.prompt_tokens > second.usage.cached_tokens
    assert first.usage.completion_tokens > 0
    assert first.latency_s > 0
    body = keyed_server.requests()[0].body
    assert body["system"] == [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]


def test_options_are_sent_as_the_messages_api_names_them(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}}}
    sender = client(options, max_tokens=300, temperature=0.2, stop=["\n\n"], json_schema=schema)
    reply = asyncio.run(sender.generate(REQUEST))
    body = keyed_server.requests()[0].body
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.2
    assert body["stop_sequences"] == ["\n\n"]
    assert body["output_format"] == {"type": "json_schema", "schema": schema}
    assert set(json.loads(reply.content)) == {"score"}


def test_the_key_is_scrubbed_from_an_error_that_echoes_it(
    keyed_server: LLMTestServer, options: dict[str, Any], api_key: str
) -> None:
    keyed_server.configure(echo_credentials=True)
    keyed_server.script(["400"])
    with pytest.raises(LLMRequestRejected) as caught:
        asyncio.run(client(options).generate(REQUEST))
    assert api_key not in scrub_secrets(str(caught.value))


def test_a_redirect_is_refused_never_followed(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["307"])
    with pytest.raises(LLMRequestRejected) as caught:
        asyncio.run(client(options).generate(REQUEST))
    assert "307" in str(caught.value)
    assert len(keyed_server.requests()) == 1
