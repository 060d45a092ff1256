"""`azure_openai`, `azure_content_safety` and `azure_prompt_shield` refuse redirects: nothing reaches the target."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest
from elspeth.llm_errors import LLMCallFailed, LLMRedirectRefused
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_azure import AzureOpenAIClient, ContentSafety, PromptShield
from elspeth_testing import EchoClient
from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=5)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("status", [307, 308])
def test_azure_openai_refuses_a_redirect(
    llm_server_factory: LLMServerFactory,
    azure_server: LLMTestServer,
    client_options: dict[str, Any],
    transport: str,
    status: int,
) -> None:
    target = llm_server_factory()
    location = f"{target.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    azure_server.configure(redirect_location=location)
    azure_server.script([str(status)])
    options = AzureOpenAIClient.Options.model_validate({**client_options, "transport": transport})
    pipeline = LLMPipeline(AzureOpenAIClient(options), retry=RETRY)

    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "the secret prompt")))

    error = caught.value.cause
    assert isinstance(error, LLMRedirectRefused)
    assert error.location == location
    assert f"HTTP {status} redirect to {location} refused" in str(error)
    assert len(caught.value.attempts) == 1
    assert target.requests() == []
    assert len(azure_server.requests("chat/completions")) == 1


@pytest.mark.parametrize(
    ("plugin", "operation"), [(ContentSafety, "text:analyze"), (PromptShield, "text:shieldPrompt")]
)
def test_content_safety_services_refuse_a_redirect(
    llm_server_factory: LLMServerFactory,
    azure_server: LLMTestServer,
    safety_options: dict[str, Any],
    plugin: Any,
    operation: str,
) -> None:
    target = llm_server_factory()
    location = f"{target.url}/contentsafety/{operation}?api-version=2024-09-01"
    azure_server.configure(redirect_location=location)
    azure_server.script(["307"], path=operation)
    client = EchoClient()
    pipeline = LLMPipeline(client, [plugin(plugin.Options.model_validate(safety_options))], retry=RETRY)

    with pytest.raises(LLMRedirectRefused, match=rf"HTTP 307 redirect to {location.replace('?', '[?]')} refused"):
        asyncio.run(pipeline.call(LLMRequest("s", "the secret prompt")))

    assert target.requests() == []
    assert len(azure_server.requests(operation)) == 1  # not retried
    assert client.requests == []
