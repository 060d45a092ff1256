"""Each error Gemini sends, through google-genai to the test server's generateContent routes: mapped, retried or not."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from elspeth import (
    ConfigError,
    LLMContentRefused,
    LLMError,
    LLMPipeline,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    scrub_secrets,
)
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_gemini import GeminiClient
from elspeth_testing import COMMON_FAULTS, LLMFaultContract, generate_once
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=2.0)
REQUEST = LLMRequest("Reply with a score.", "the kettle")
KEY = "AIza-gemini-test-not-a-secret"  # the conftest's key


def client(options: dict[str, Any], **more: Any) -> GeminiClient:
    return GeminiClient(GeminiClient.Options.model_validate({**options, **more}))


class TestGeminiFaults(LLMFaultContract):
    plugin_class = GeminiClient
    where = "gemini gemini-test at http://127.0.0.1"
    faults: ClassVar[dict[str, type[LLMError]]] = {**COMMON_FAULTS, "429:0.5": LLMRateLimited, "empty": LLMServerError}

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options


class TestVertexFaults(TestGeminiFaults):
    where = "gemini gemini-test on Vertex AI (elspeth-test, europe-west4) at http://127.0.0.1"

    @pytest.fixture
    def plugin_options(self, vertex_options: dict[str, Any]) -> dict[str, Any]:
        return vertex_options


def test_a_429_names_resource_exhausted_and_a_block_its_reason(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    keyed_server.script(["429", "content_filter"])
    with pytest.raises(LLMRateLimited, match="RESOURCE_EXHAUSTED"):
        generate_once(client(options))
    with pytest.raises(LLMContentRefused, match=r"prompt was blocked \(blockReason: SAFETY\)"):
        generate_once(client(options))


def test_each_backend_calls_its_own_path_with_its_own_credential(
    keyed_server: LLMTestServer, options: dict[str, Any], vertex_options: dict[str, Any]
) -> None:
    first = generate_once(client(options, api_version="v1beta"))
    second = generate_once(client(vertex_options))
    assert first.content == second.content  # the same prompt, the same reply, whichever API carried it
    generate_once(client(options))
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
    reply = generate_once(sender, LLMRequest("Be terse.", "the kettle", params={"max_tokens": 50}))
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
        generate_once(client(options, params={"bogus_field": 1}))
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
        generate_once(client(adc))
    assert keyed_server.requests() == []


def test_a_wrong_key_is_rejected(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure(api_key="AIza-someone-else")
    with pytest.raises(LLMRequestRejected, match="API key not valid"):
        generate_once(client(options))


def test_the_key_is_scrubbed_from_an_error_that_echoes_it(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure(echo_credentials=True)
    keyed_server.script(["400"])
    with pytest.raises(LLMRequestRejected) as caught:
        generate_once(client(options))
    assert KEY in str(caught.value)  # the server did echo it ...
    assert KEY not in scrub_secrets(str(caught.value))  # ... and the run's scrubbing takes it out


def test_vertex_with_a_service_account_file_exchanges_its_jwt_for_a_token(
    keyed_server: LLMTestServer, vertex_options: dict[str, Any], tmp_path: Any
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "elspeth-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "judge@elspeth-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{keyed_server.url}/token",  # google-auth signs a JWT and exchanges it here
    }
    key_file = tmp_path / "judge.json"
    key_file.write_text(json.dumps(account))
    options = {k: v for k, v in vertex_options.items() if k != "access_token_env"}

    reply = generate_once(client(options, credentials_file=str(key_file)))

    assert reply.content
    token, answer = keyed_server.requests()
    assert token.path == "/token"
    assert token.credential == "service-account judge@elspeth-test.iam.gserviceaccount.com"
    assert answer.credential == "bearer"
    assert answer.credential_ok  # the token the exchange issued is the one the call presented


@pytest.mark.parametrize("finish", ["SAFETY", "PROHIBITED_CONTENT", "RECITATION"])
def test_a_reply_stopped_by_a_safety_finish_reason_is_a_refusal(finish: str) -> None:
    from google.genai import types

    from elspeth_llm_gemini.sdk import to_response

    # the wire JSON of a reply whose candidate was blocked after generation, read by the SDK's own type
    wire = {"candidates": [{"finishReason": finish, "index": 0, "content": {"role": "model", "parts": []}}]}
    reply = types.GenerateContentResponse.model_validate(wire)
    with pytest.raises(LLMContentRefused, match=f"finishReason: {finish}"):
        to_response(reply, "gemini-test", "gemini gemini-test")


def test_thinking_tokens_count_as_output_and_thoughts_are_not_the_answer() -> None:
    from google.genai import types

    from elspeth_llm_gemini.sdk import to_response

    wire = {
        "candidates": [
            {
                "finishReason": "STOP",
                "content": {"role": "model", "parts": [{"text": "hmm", "thought": True}, {"text": "Score: 4"}]},
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 20},
        "modelVersion": "gemini-2.5-flash-001",
    }
    response = to_response(types.GenerateContentResponse.model_validate(wire), "gemini-2.5-flash", "here")
    assert response.content == "Score: 4"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (10, 23)
    assert response.model == "gemini-2.5-flash-001"
