"""A redirect from an allowed endpoint is refused, never followed: the prompt never reaches the redirect's target."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest
from elspeth.llm_errors import LLMCallFailed, LLMRedirectRefused
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=5)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_naming_status_and_location_and_the_target_receives_nothing(
    llm_server_factory: LLMServerFactory,
    keyed_server: LLMTestServer,
    options: dict[str, Any],
    transport: str,
    status: int,
) -> None:
    target = llm_server_factory()
    location = f"{target.openai_base_url}/chat/completions"
    keyed_server.configure(redirect_location=location)
    keyed_server.script([str(status)])
    client = OpenAIClient(OpenAIClient.Options.model_validate({**options, "transport": transport}))
    pipeline = LLMPipeline(client, retry=RETRY)

    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(pipeline.call(LLMRequest("Be terse.", "the secret prompt")))

    error = caught.value.cause
    assert isinstance(error, LLMRedirectRefused)
    assert not error.retryable
    assert error.status == status
    assert error.location == location
    assert f"HTTP {status} redirect to {location} refused" in str(error)
    assert len(caught.value.attempts) == 1  # not retried
    assert target.requests() == []  # nothing followed the redirect
    assert len(keyed_server.requests("chat/completions")) == 1


def test_a_redirect_without_location_says_so(keyed_server: LLMTestServer, options: dict[str, Any]) -> None:
    keyed_server.script(["307"])
    keyed_server.configure(redirect_location="")
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    with pytest.raises(LLMRedirectRefused, match=r"HTTP 307 redirect to \(no Location header\) refused"):
        asyncio.run(client.generate(LLMRequest("s", "u")))
