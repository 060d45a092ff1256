"""Each error Gemini sends, through google-genai to the test server's generateContent routes: mapped, retried or not."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import (
    ConfigError,
    LLMConnectionError,
    LLMContentRefused,
    LLMPipeline,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    scrub_secrets,
)
from elspeth.llm_errors import LLMCallFailed
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_gemini import GeminiClient
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=2.0)
REQUEST = LLMRequest("Reply with a score.", "the kettle")
KEY = "AIza-gemini-test-not-a-secret"  # the conftest's key


def client(options: dict[str, Any], **more: Any) -> GeminiClient:
    return GeminiClient(GeminiClient.Options.model_validate({**options, **more}))


def call(sender: GeminiClient, request: LLMRequest = REQUEST) -> LLMResponse:
    async def once() -> LLMResponse:
        try:
            return await sender.generate(request)
        finally:
            await sender.aclose()

    return asyncio.run(once())


@pytest.fixture(params=["gemini", "vertex"])
def either(request: pytest.FixtureRequest, options: dict[str, Any], vertex_options: dict[str, Any]) -> dict[str, Any]:
    """The options of each backend in turn."""
    return options if request.param == "gemini" else vertex_options


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ("429:3", LLMRateLimited, 3.0),
        ("429:0.5", LLMRateLimited, 0.5),
        ("503", LLMServerError, None),
        ("500", LLMServerError, None),
        ("drop", LLMConnectionError, None),
        ("malformed", LLMServerError, None),
        ("empty", LLMServerError, None),
        ("400", LLMRequestRejected, None),
        ("401", LLMRequestRejected, None),
        ("403", LLMRequestRejected, None),
        ("404", LLMRequestRejected, None),
        ("content_filter", LLMContentRefused, None),
    ],
)
def test_each_fault_maps_to_its_elspeth_error(
    keyed_server: LLMTestServer, either: dict[str, Any], fault: str, error: type, retry_after: float | None
) -> None:
    keyed_server.script([fault])
    with pytest.raises(error) as caught:
        call(client(either))
    assert f"gemini gemini-test {'on Vertex AI (elspeth-test, europe-west4) ' if either.get('vertexai') else ''}at" in (
        str(caught.value)
    )
    if retry_after is not None:
        assert caught.value.retry_after == retry_after  # from the RetryInfo detail: the server sends no header
    assert len(keyed_server.requests()) == 1, "the SDK retried on its own"


def test_a_429_names_resource_exhausted_and_a_block_its_reason(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    keyed_server.script(["429", "content_filter"])
    with pytest.raises(LLMRateLimited, match="RESOURCE_EXHAUSTED"):
        call(client(options))
    with pytest.raises(LLMContentRefused, match=r"prompt was blocked \(blockReason: SAFETY\)"):
        call(client(options))


@pytest.mark.parametrize(
    ("fault", "retried"),
    [
        ("429:0.01", True),
        ("503", True),
        ("500", True),
        ("drop", True),
        ("400", False),
        ("403", False),
        ("content_filter", False),
    ],
)
def test_the_pipeline_retries_only_what_may_succeed_later(
    keyed_server: LLMTestServer, either: dict[str, Any], fault: str, retried: bool
) -> None:
    keyed_server.script([fault])
    pipeline = LLMPipeline(client(either), retry=FAST_RETRY, name="gemini")

    async def once() -> LLMResponse | LLMCallFailed:
        try:
            return await pipeline.call(REQUEST)
        except LLMCallFailed as exc:
            return exc

    outcome = asyncio.run(once())
    outcomes = [r.outcome for r in keyed_server.requests() if r.prompt == "the kettle"]
    if retried:
        assert isinstance(outcome, LLMResponse), outcome
        assert outcomes == [fault.partition(":")[0], "ok"]
    else:
        assert isinstance(outcome, LLMCallFailed)
        assert "not retryable after 1 attempt" in str(outcome)
        assert len(outcomes) == 1


def test_a_hang_is_a_timeout_after_the_client_timeout(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["hang"])
    with pytest.raises(LLMTimeout, match="within the client's `timeout`"):
        call(client(options, timeout=0.5))


def test_each_backend_calls_its_own_path_with_its_own_credential(
    keyed_server: LLMTestServer, options: dict[str, Any], vertex_options: dict[str, Any]
) -> None:
    first = call(client(options, api_version="v1beta"))
    second = call(client(vertex_options))
    assert first.content == second.content  # the same prompt, the same reply, whichever API carried it
    call(client(options))
    gemini, vertex, default = keyed_server.requests()
    assert gemini.path == "/v1beta/models/gemini-test:generateContent"
    assert default.path.endswith("/models/gemini-test:generateContent")  # the SDK's default version
    assert gemini.credential == "x-goog-api-key"
    assert vertex.path == (
        "/v1beta1/projects/elspeth-test/locations/europe-west4/publishers/google/models/gemini-test:generateContent"
    )
    assert vertex.credential == "bearer"
    assert gemini.credential_ok
    assert vertex.credential_ok


def test_usage_and_latency(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    async def once() -> LLMResponse:
        sender = client(options)
        try:
            return await LLMPipeline(sender, retry=FAST_RETRY, name="gemini").call(REQUEST)
        finally:
            await sender.aclose()

    reply = asyncio.run(once())
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.usage.cached_tokens == 0
    assert reply.latency_s > 0
    assert reply.model == "gemini-test"


def test_options_are_sent_as_generate_content_names_them(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}}}
    sender = client(
        options,
        max_tokens=300,
        temperature=0.2,
        top_p=0.9,
        stop=["\n\n"],
        json_schema=schema,
        safety_settings={"HARM_CATEGORY_HARASSMENT": "BLOCK_ONLY_HIGH"},
        params={"seed": 7},
    )
    reply = call(sender, LLMRequest("Be terse.", "the kettle", params={"max_tokens": 50}))
    body = keyed_server.requests()[0].body
    config = body["generationConfig"]
    assert config["maxOutputTokens"] == 50
    assert config["temperature"] == 0.2
    assert config["topP"] == 0.9
    assert config["stopSequences"] == ["\n\n"]
    assert config["seed"] == 7
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    assert set(json.loads(reply.content)) == {"score"}


def test_an_unknown_config_field_is_rejected_before_sending(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    with pytest.raises(LLMRequestRejected, match=r"(?s)generation config is not valid.*bogus_field.*check `params`"):
        call(client(options, params={"bogus_field": 1}))
    assert keyed_server.requests() == []


def test_a_missing_key_or_token_is_a_config_error(
    options: dict[str, Any], vertex_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"NOPE_KEY \(option `api_key_env`\) is not set"):
        client(options, api_key_env="NOPE_KEY")
    with pytest.raises(ConfigError, match=r"NOPE_TOKEN \(option `access_token_env`\) is not set"):
        client(vertex_options, access_token_env="NOPE_TOKEN")
    with pytest.raises(ConfigError, match="credentials_file"):
        client({**vertex_options, "access_token_env": None}, credentials_file="/nonexistent/key.json")


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"project": "p"}, "only apply to Vertex AI"),
        ({"vertexai": True}, "Vertex AI needs `project`"),
        ({"vertexai": True, "project": "p", "access_token_env": "A", "credentials_file": "f"}, "not both"),
    ],
)
def test_backend_options_that_do_not_fit_are_refused(
    options: dict[str, Any], more: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        GeminiClient.Options.model_validate({**options, **more})


def test_no_credentials_for_vertex_is_rejected_never_retried(
    keyed_server: LLMTestServer, vertex_options: dict[str, Any]
) -> None:
    adc = {k: v for k, v in vertex_options.items() if k != "access_token_env"}
    with pytest.raises(LLMRequestRejected, match="no usable Google credentials"):
        call(client(adc))
    assert keyed_server.requests() == []


def test_a_wrong_key_is_rejected(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure(api_key="AIza-someone-else")
    with pytest.raises(LLMRequestRejected, match="API key not valid"):
        call(client(options))


def test_the_key_is_scrubbed_from_an_error_that_echoes_it(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure(echo_credentials=True)
    keyed_server.script(["400"])
    with pytest.raises(LLMRequestRejected) as caught:
        call(client(options))
    assert KEY in str(caught.value)  # the server did echo it ...
    assert KEY not in scrub_secrets(str(caught.value))  # ... and the run's scrubbing takes it out


def test_a_redirect_is_refused_never_followed(keyed_server: LLMTestServer, either: dict[str, Any]) -> None:
    keyed_server.script(["307"])
    with pytest.raises(LLMRequestRejected) as caught:
        call(client(either))
    assert "307" in str(caught.value)
    assert len(keyed_server.requests()) == 1
