"""A service that echoes the key, the Entra token or the subscription key: the errors Elspeth keeps never hold them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest
from elspeth.llm_errors import LLMCallFailed, LLMRequestRejected
from elspeth_llm_azure import AzureOpenAIClient, ContentSafety, PromptShield
from elspeth_testing import EchoClient
from elspeth_testing.llm_server import LLMTestServer


def test_the_azure_openai_key_echoed_in_an_error_and_a_reply_is_scrubbed(
    azure_server: LLMTestServer, client_options: dict[str, Any]
) -> None:
    azure_server.configure(echo_credentials=True)
    key = azure_server.config.api_key
    assert key is not None
    client = AzureOpenAIClient(AzureOpenAIClient.Options.model_validate(client_options))
    reply = asyncio.run(LLMPipeline(client).call(LLMRequest("s", "u")))
    assert "(sent with <redacted:AZURE_OPENAI_TEST_KEY>)" in reply.content
    azure_server.script(["403"])
    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(LLMPipeline(client).call(LLMRequest("s", "u")))
    assert key not in str(caught.value)
    assert "Credential presented: <redacted:AZURE_OPENAI_TEST_KEY>" in caught.value.attempts[0]["error"]


def test_an_entra_token_echoed_back_is_scrubbed(
    azure_server: LLMTestServer, client_options: dict[str, Any], token_credential: Any
) -> None:
    azure_server.configure(echo_credentials=True)
    credential = token_credential()
    options = AzureOpenAIClient.Options.model_validate({**client_options, "auth": "entra"})
    azure_server.script(["400"])
    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(LLMPipeline(AzureOpenAIClient(options, credential)).call(LLMRequest("s", "u")))
    assert credential.token not in str(caught.value)
    assert "Credential presented: Bearer <redacted:entra_token>" in str(caught.value)


@pytest.mark.parametrize(
    ("plugin", "operation"), [(ContentSafety, "text:analyze"), (PromptShield, "text:shieldPrompt")]
)
def test_a_content_safety_key_echoed_in_an_error_is_scrubbed(
    azure_server: LLMTestServer, safety_options: dict[str, Any], plugin: Any, operation: str
) -> None:
    azure_server.configure(echo_credentials=True)
    key = azure_server.config.safety_key
    assert key is not None
    azure_server.script(["401"], path=operation)
    pipeline = LLMPipeline(EchoClient(), [plugin(plugin.Options.model_validate(safety_options))])
    with pytest.raises(LLMRequestRejected) as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "the prompt")))
    assert key not in str(caught.value)
    assert "<redacted:AZURE_CONTENT_SAFETY_TEST_KEY>" in str(caught.value)
