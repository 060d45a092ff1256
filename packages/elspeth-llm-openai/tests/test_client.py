"""The `openai` client against a real HTTP server on 127.0.0.1: what it sends and what it returns."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import ConfigError, LLMPipeline, LLMRequest
from elspeth.llm_errors import LLMContentRefused, LLMRateLimited, LLMRequestRejected, LLMServerError, LLMTimeout
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_server import LLMTestServer


def make(options: dict[str, Any], **changes: Any) -> OpenAIClient:
    return OpenAIClient(OpenAIClient.Options.model_validate({**options, **changes}))


def generate(client: OpenAIClient, request: LLMRequest) -> Any:
    return asyncio.run(client.generate(request))


def test_sends_prompts_and_options_and_reports_usage_and_model(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = make(options, temperature=0.2, max_tokens=50, params={"seed": 7})
    response = generate(client, LLMRequest("You are terse.", "Rate this review: great kettle"))

    assert response.content.startswith("Score: ")
    assert response.model == "gpt-test"
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    [sent] = keyed_server.requests()
    assert sent.body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Rate this review: great kettle"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "seed": 7,
    }
    assert sent.credential == "bearer"
    assert sent.credential_ok
    assert sent.headers["authorization"] == "<redacted>"
    assert sent.headers["x-stainless-retry-count"] == "0"


def test_request_params_override_options_and_unknown_ones_travel_in_the_body(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    client = make(options, temperature=0.2, extra_body={"top_k": 5})
    generate(client, LLMRequest("", "hi", params={"temperature": 0.9, "model": "other", "repetition_penalty": 1.1}))

    body = keyed_server.requests()[0].body
    assert body["temperature"] == 0.9
    assert body["model"] == "other"
    assert body["top_k"] == 5
    assert body["repetition_penalty"] == 1.1
    assert body["messages"] == [{"role": "user", "content": "hi"}]  # an empty system prompt is not sent


def test_json_mode_gives_a_json_reply(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    response = generate(make(options, response_format="json_object"), LLMRequest("s", "Rate: ok"))

    assert keyed_server.requests()[0].body["response_format"] == {"type": "json_object"}
    reply = json.loads(response.content)
    assert set(reply) == {"score", "rationale"}
    assert 0 <= reply["score"] <= 1


def test_json_schema_response_format(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "verdict",
            "strict": True,
            "schema": {"type": "object", "properties": {"score": {"type": "number"}, "ok": {"type": "boolean"}}},
        },
    }
    response = generate(make(options), LLMRequest("s", "Rate: ok", params={"response_format": schema}))

    assert keyed_server.requests()[0].body["response_format"] == schema
    assert set(json.loads(response.content)) == {"score", "ok"}


def test_a_bad_response_format_is_refused_when_the_settings_load(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="json_schema"):
        make(options, response_format={"type": "json_schema"})
    with pytest.raises(ValidationError, match="json_object"):
        make(options, response_format="yaml")


def test_cached_tokens_are_reported(options: dict[str, Any]) -> None:
    client = make(options)
    system = "You are a careful analyst. " * 200  # over 1,024 tokens, so the server caches its prefix
    first = generate(client, LLMRequest(system, "one"))
    second = generate(client, LLMRequest(system, "two"))

    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= 1024
    assert second.usage.prompt_tokens >= second.usage.cached_tokens


def test_max_tokens_truncates_the_reply(options: dict[str, Any]) -> None:
    response = generate(make(options, max_tokens=2), LLMRequest("s", "a long question " * 10))

    assert response.usage.completion_tokens <= 2
    assert response.raw.choices[0].finish_reason == "length"


def test_missing_key_names_the_variable(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_TEST_KEY")
    with pytest.raises(ConfigError, match=r"OPENAI_TEST_KEY \(option `api_key_env`\) is not set"):
        make(options)


def test_a_local_endpoint_may_go_without_a_key(
    options: dict[str, Any], llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_TEST_KEY")
    llm_server.configure(api_key=None)
    response = generate(make(options, allow_missing_key=True), LLMRequest("s", "hello"))

    assert response.content


def test_endpoint_is_the_base_url(options: dict[str, Any], api_key: str) -> None:
    assert make(options, base_url="http://127.0.0.1:9/v1/").endpoint == "http://127.0.0.1:9/v1"
    assert make(options, base_url=None).endpoint == "https://api.openai.com/v1"
    assert "sk-test" not in repr(make(options))


def test_wrong_key_is_rejected_with_a_hint(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.configure(api_key="a-different-key")
    with pytest.raises(LLMRequestRejected, match=r"401.*api_key_env") as caught:
        generate(make(options), LLMRequest("s", "hello"))
    assert caught.value.status == 401
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("429:2.5", LLMRateLimited, 429),
        ("500", LLMServerError, 500),
        ("503", LLMServerError, 503),
        ("400", LLMRequestRejected, 400),
        ("403", LLMRequestRejected, 403),
        ("404", LLMRequestRejected, 404),
        ("content_filter", LLMContentRefused, 400),
        ("empty", LLMServerError, None),
        ("malformed", LLMServerError, None),
    ],
)
def test_http_failures_become_elspeth_errors(
    options: dict[str, Any], keyed_server: LLMTestServer, fault: str, error: type[Exception], status: int
) -> None:
    keyed_server.script([fault])
    with pytest.raises(error) as caught:
        generate(make(options), LLMRequest("s", "hello"))
    assert getattr(caught.value, "status", None) == status
    assert keyed_server.openai_base_url in str(caught.value)
    if fault.startswith("429"):
        assert getattr(caught.value, "retry_after", None) == 2.5
    assert len(keyed_server.requests()) == 1, "the SDK retried on its own; its retries must be off"


def test_the_model_refusing_is_a_content_refusal(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.configure(refuse_marker="FORBIDDEN")
    with pytest.raises(LLMContentRefused, match=r"content_filter|filtered"):
        generate(make(options), LLMRequest("s", "tell me the FORBIDDEN thing"))


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_one_connection_pool_per_client_and_it_is_closed(
    options: dict[str, Any], keyed_server: LLMTestServer, transport: str
) -> None:
    client = make(options, transport=transport, max_connections=4)

    async def main() -> None:
        await asyncio.gather(*(client.generate(LLMRequest("s", f"q{i}")) for i in range(20)))
        await client.aclose()
        await client.aclose()  # twice is harmless
        await client.generate(LLMRequest("s", "after close"))  # a later call opens new connections

    asyncio.run(main())
    assert len(keyed_server.successes_per_prompt()) == 21
    connections = {r.peer for r in keyed_server.requests()[:20]}
    assert 1 <= len(connections) <= 4, "more connections than `max_connections`, or none kept alive"


def test_the_timeout_option_ends_a_hung_call_quickly(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.configure(hang_s=30)
    keyed_server.script(["hang"])
    client = make(options, timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(LLMTimeout, match=r"openai gpt-test at .*timeout") as caught:
        generate(client, LLMRequest("s", "are you there?"))
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 3, f"the client gave up after {elapsed:.2f} s, not about 0.3 s"
    assert caught.value.retryable


def test_the_pipeline_measures_the_real_latency(options: dict[str, Any], keyed_server: LLMTestServer) -> None:
    keyed_server.configure(latency_ms=50)
    response = asyncio.run(LLMPipeline(make(options)).call(LLMRequest("s", "take your time")))
    assert 0.05 <= response.latency_s < 5


def test_key_identity_names_the_key_without_revealing_it(
    options: dict[str, Any], api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make(options)
    assert first.key_id.startswith("key-")
    assert api_key not in first.key_id
    assert first.key_id == make(options).key_id
    monkeypatch.setenv("OPENAI_TEST_KEY", api_key + "-other")
    assert make(options).key_id != first.key_id
