"""Each error Bedrock sends, through boto3 to the test server's Converse route: mapped, retried or not."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

from elspeth import (
    ConfigError,
    LLMError,
    LLMPipeline,
    LLMRateLimited,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    scrub_secrets,
)
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_bedrock import BedrockClient
from elspeth_testing import COMMON_FAULTS, LLMFaultContract, generate_once
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=2.0)
SECRET_KEY = "bedrock-test-secret-key-not-a-secret-0001"  # the conftest's AWS_SECRET_ACCESS_KEY
REQUEST = LLMRequest("Reply with a score.", "the kettle")


def client(options: dict[str, Any], **more: Any) -> BedrockClient:
    return BedrockClient(BedrockClient.Options.model_validate({**options, **more}))


class TestBedrockFaults(LLMFaultContract):
    plugin_class = BedrockClient
    where = "bedrock anthropic.claude-test-v1:0 at http://127.0.0.1"
    faults: ClassVar[dict[str, type[LLMError]]] = {**COMMON_FAULTS, "408": LLMTimeout}

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options


def test_the_exception_names_decide_what_the_error_says(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["429", "403", "503"])
    with pytest.raises(LLMRateLimited, match="ThrottlingException"):
        generate_once(client(options))
    with pytest.raises(LLMRequestRejected, match=r"AccessDeniedException.*IAM policy"):
        generate_once(client(options))
    with pytest.raises(LLMServerError, match="ServiceUnavailableException"):
        generate_once(client(options))


def test_usage_prompt_caching_and_latency(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    cached = client(options, cache_system=True)
    long_system = "Judge the review strictly. " * 200
    request = LLMRequest(long_system, "the kettle")

    async def twice() -> list[LLMResponse]:
        pipeline = LLMPipeline(cached, retry=FAST_RETRY, name="bedrock")
        try:
            return [await pipeline.call(request), await pipeline.call(request)]
        finally:
            await cached.aclose()

    first, second = asyncio.run(twice())
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == len(long_system) // 4
    assert second.usage.prompt_tokens == first.usage.prompt_tokens > second.usage.cached_tokens
    assert first.usage.completion_tokens > 0
    assert first.latency_s > 0
    assert first.model == "anthropic.claude-test-v1:0"
    body = keyed_server.requests()[0].body
    assert body["system"] == [{"text": long_system}, {"cachePoint": {"type": "default"}}]


def test_options_are_sent_as_converse_names_them(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}}}
    sender = client(
        options,
        max_tokens=300,
        temperature=0.2,
        top_p=0.9,
        stop=["\n\n"],
        json_schema=schema,
        params={"performanceConfig": {"latency": "standard"}},
    )
    reply = generate_once(sender, LLMRequest("sys", "the kettle", params={"max_tokens": 50}))
    body = keyed_server.requests()[0].body
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\n"]}
    assert body["performanceConfig"] == {"latency": "standard"}
    fmt = body["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == schema
    assert set(json.loads(reply.content)) == {"score"}
    assert keyed_server.requests()[0].path == "/model/anthropic.claude-test-v1:0/converse"


def test_an_unknown_converse_field_is_rejected_before_sending(
    keyed_server: LLMTestServer, options: dict[str, Any]
) -> None:
    with pytest.raises(LLMRequestRejected, match=r"Unknown parameter.*bogusField.*check `params`"):
        generate_once(client(options, params={"bogusField": 1}))
    assert keyed_server.requests() == []


def test_the_region_comes_from_the_option_or_the_chain(
    keyed_server: LLMTestServer, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_once(client(options))
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    chained = client({k: v for k, v in options.items() if k != "region"})
    assert chained.region == "ap-southeast-2"
    generate_once(chained)
    assert [r.credential for r in keyed_server.requests()] == ["sigv4/eu-west-1", "sigv4/ap-southeast-2"]
    assert all(r.credential_ok for r in keyed_server.requests())


def test_no_region_anywhere_is_a_config_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"no AWS region.*`region`"):
        client({k: v for k, v in options.items() if k != "region"})


def test_the_endpoint_defaults_to_the_regions_runtime(options: dict[str, Any]) -> None:
    sender = client({"model": "m", "region": "us-west-2"})
    assert sender.endpoint == "https://bedrock-runtime.us-west-2.amazonaws.com"


def test_credentials_come_from_a_profile_of_the_config_files(
    keyed_server: LLMTestServer, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[judge]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = {SECRET_KEY}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    keyed_server.configure(api_key="AKIAPROFILE")
    assert generate_once(client(options, profile="judge")).content
    assert keyed_server.requests()[0].credential_ok


def test_missing_credentials_are_rejected_never_retried(
    keyed_server: LLMTestServer, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(LLMRequestRejected, match="no usable credentials"):
        generate_once(client(options))
    with pytest.raises(LLMRequestRejected, match="judge"):
        generate_once(client(options, profile="judge"))
    assert keyed_server.requests() == []


def test_wrong_credentials_are_rejected(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.configure(api_key="AKIASOMEONEELSE")
    with pytest.raises(LLMRequestRejected, match="HTTP 403"):
        generate_once(client(options))


def test_the_secret_key_is_registered_for_scrubbing(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    generate_once(client(options))
    assert SECRET_KEY not in scrub_secrets(f"botocore said: {SECRET_KEY}")
