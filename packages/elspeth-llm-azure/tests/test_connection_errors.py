"""azure_openai: a refused connection is LLMConnectionError on both transports (issue 12, point 4)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from elspeth import LLMConnectionError, LLMRequest
from elspeth_llm_azure import AzureOpenAIClient


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_connection_refused_is_a_connection_error(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELSPETH_TEST_AZURE_KEY", "k")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {
        "endpoint": f"http://127.0.0.1:{port}",
        "deployment": "d",
        "api_key_env": "ELSPETH_TEST_AZURE_KEY",
        "transport": transport,
    }
    client = AzureOpenAIClient(AzureOpenAIClient.Options.model_validate(options), None)

    async def main() -> BaseException:
        try:
            await client.generate(LLMRequest("s", "u"))
        except Exception as exc:  # the test inspects what the client raised
            return exc
        finally:
            await client.aclose()
        raise AssertionError("the call succeeded")

    error = asyncio.run(main())
    assert isinstance(error, LLMConnectionError), repr(error)
    assert str(error) == f"azure_openai deployment d at http://127.0.0.1:{port}: connection refused"
    assert error.retryable
