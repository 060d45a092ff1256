"""Each error class the Anthropic API sends, through the real SDK to the test server: mapped, retried or not."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

from elspeth import (
    LLMError,
    LLMPipeline,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    scrub_secrets,
)
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_anthropic import AnthropicClient
from elspeth_testing import COMMON_FAULTS, LLMFaultContract
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=2.0)
REQUEST = LLMRequest("Reply with a score.", "the kettle")


def client(options: dict[str, Any], **more: Any) -> AnthropicClient:
    return AnthropicClient(AnthropicClient.Options.model_validate({**options, **more}))


class TestAnthropicFaults(LLMFaultContract):
    plugin_class = AnthropicClient
    where = "anthropic claude-test at http://127.0.0.1"
    faults: ClassVar[dict[str, type[LLMError]]] = {**COMMON_FAULTS, "529": LLMServerError}

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options


def test_an_overloaded_529_says_so(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["529"])
    with pytest.raises(LLMServerError) as caught:
        asyncio.run(client(options).generate(REQUEST))
    assert "Overloaded" in str(caught.value) or "529" in str(caught.value)


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
