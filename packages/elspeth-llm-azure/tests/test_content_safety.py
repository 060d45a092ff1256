"""`azure_content_safety` and `azure_prompt_shield` against the test server's Content Safety endpoints."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse
from elspeth.llm_errors import LLMContentRefused, LLMRateLimited, LLMRequestRejected, LLMServerError
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_azure import ContentSafety, PromptShield
from elspeth_testing import EchoClient
from elspeth_testing.llm_server import LLMTestServer

RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=5)


class ViolentClient:
    async def generate(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(content="a VIOLENT reply")


def safety(options: dict[str, Any], **changes: Any) -> ContentSafety:
    return ContentSafety(ContentSafety.Options.model_validate({**options, **changes}))


def shield(options: dict[str, Any], **changes: Any) -> PromptShield:
    return PromptShield(PromptShield.Options.model_validate({**options, **changes}))


def through(middleware: Any, user: str, system: str = "Be kind.") -> tuple[LLMResponse, EchoClient]:
    client = EchoClient()
    response = asyncio.run(LLMPipeline(client, [middleware]).call(LLMRequest(system, user, metadata={"row_id": "r1"})))
    return response, client


def test_abort_names_category_and_severity_and_the_llm_is_never_called(
    safety_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    client = EchoClient()
    pipeline = LLMPipeline(client, [safety(safety_options)])
    with pytest.raises(LLMContentRefused, match=r"user prompt was flagged: Violence severity 6 \(threshold 4\)"):
        asyncio.run(pipeline.call(LLMRequest("s", "a VIOLENT story")))
    assert client.requests == []
    [sent] = azure_server.requests()
    assert sent.path == "/contentsafety/text:analyze"
    assert sent.query == {"api-version": "2024-09-01"}
    assert sent.credential == "subscription-key"
    assert sent.credential_ok
    assert sent.body == {"text": "a VIOLENT story", "categories": ["Hate", "SelfHarm", "Sexual", "Violence"]}


def test_severity_below_the_threshold_passes_and_per_category_thresholds_apply(
    safety_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    response, client = through(safety(safety_options), "a RACY joke")  # Sexual 2 < 4
    assert response.content == "a RACY joke"
    assert client.requests[0].metadata["content_safety"] == {"user prompt": {}}
    with pytest.raises(LLMContentRefused, match=r"Sexual severity 2 \(threshold 2\)"):
        through(safety(safety_options, thresholds={"Sexual": 2}), "a RACY joke")


def test_mask_replaces_the_flagged_prompt(safety_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    _response, client = through(safety(safety_options, on_violation="mask"), "something HATEFUL")
    assert client.requests[0].user == "[CONTENT BLOCKED]"
    assert client.requests[0].metadata["content_safety"] == {"user prompt": {"Hate": 4}}


def test_log_lets_the_prompt_through_and_warns(
    safety_options: dict[str, Any], azure_server: LLMTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "elspeth.azure_content_safety"):
        _response, client = through(safety(safety_options, on_violation="log"), "something HATEFUL")
    assert client.requests[0].user == "something HATEFUL"
    assert "Hate severity 4" in caplog.text
    assert "something HATEFUL" not in caplog.text  # prompts never reach the log


def test_system_prompt_and_responses_are_screened_when_asked(
    safety_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    with pytest.raises(LLMContentRefused, match="system prompt was flagged: SelfHarm severity 4"):
        through(safety(safety_options, screen_system=True), "fine", system="SELFHARM rules")
    pipeline = LLMPipeline(ViolentClient(), [safety(safety_options, screen_responses=True)])
    with pytest.raises(LLMContentRefused, match="response was flagged: Violence severity 6"):
        asyncio.run(pipeline.call(LLMRequest("s", "tell a story")))
    assert len(azure_server.requests()) == 4  # system + user, then user + response
    pipeline = LLMPipeline(ViolentClient(), [safety(safety_options, screen_responses=True, on_violation="mask")])
    assert asyncio.run(pipeline.call(LLMRequest("s", "tell a story"))).content == "[CONTENT BLOCKED]"


def test_long_text_is_screened_in_chunks(safety_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    text = "calm words " * 2000 + "VIOLENT"  # over the service's 10,000-character limit
    with pytest.raises(LLMContentRefused, match="Violence severity 6"):
        through(safety(safety_options), text)
    sent = azure_server.requests()
    assert len(sent) == 3
    assert all(len(r.body["text"]) <= 10_000 for r in sent)


def test_on_error_abort_and_skip(safety_options: dict[str, Any], azure_server: LLMTestServer) -> None:
    azure_server.script(["500"], path="text:analyze")
    with pytest.raises(LLMServerError, match=r"azure_content_safety at .*HTTP 500"):
        through(safety(safety_options), "hello")
    azure_server.script(["503"], path="text:analyze")
    _response, client = through(safety(safety_options, on_error="skip"), "hello")
    assert client.requests[0].metadata["content_safety"] == {"user prompt": "skipped"}


@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_is_a_rejection_never_retried(
    safety_options: dict[str, Any], azure_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    if status == "401":
        monkeypatch.setenv("AZURE_CONTENT_SAFETY_TEST_KEY", "wrong")
    else:
        azure_server.script(["403"], path="text:analyze")
    pipeline = LLMPipeline(EchoClient(), [safety(safety_options)], retry=RETRY)
    with pytest.raises(LLMRequestRejected, match=rf"HTTP {status}.*api_key_env") as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "hello")))
    assert not caught.value.retryable
    assert len(azure_server.requests()) == 1, "a refused key was retried"


def test_429_and_5xx_are_retried_with_the_runs_policy_honouring_retry_after(
    safety_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    azure_server.script(["429:0.3", "503", "malformed"], path="text:analyze")
    client = EchoClient()
    pipeline = LLMPipeline(client, [safety(safety_options)], retry=RETRY)
    response = asyncio.run(pipeline.call(LLMRequest("s", "a calm question")))

    assert response.content == "a calm question"
    sent = azure_server.requests()
    assert [r.outcome for r in sent] == ["429", "503", "malformed", "ok"]
    assert sent[1].t - sent[0].t >= 0.3, "the screen did not wait for the service's Retry-After"
    assert client.requests[0].metadata["content_safety"] == {"user prompt": {}}


def test_without_a_retry_policy_one_failure_aborts_or_skips(
    safety_options: dict[str, Any], azure_server: LLMTestServer
) -> None:
    azure_server.script(["429:0"], path="text:analyze")
    with pytest.raises(LLMRateLimited, match=r"azure_content_safety at .*HTTP 429"):
        through(safety(safety_options), "hello")
    assert len(azure_server.requests()) == 1


@pytest.mark.parametrize("fault", ["empty", "malformed"])
def test_a_reply_without_categories_analysis_is_an_error_never_a_pass(
    safety_options: dict[str, Any], azure_server: LLMTestServer, fault: str
) -> None:
    azure_server.script([fault], path="text:analyze")
    with pytest.raises(LLMServerError, match=r"categoriesAnalysis|not JSON"):
        through(safety(safety_options), "something VIOLENT")
    azure_server.script([fault], path="text:analyze")
    _response, client = through(safety(safety_options, on_error="skip"), "hello")
    assert client.requests[0].metadata["content_safety"] == {"user prompt": "skipped"}
