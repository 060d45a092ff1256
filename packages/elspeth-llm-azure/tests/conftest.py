from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken

import elspeth_llm_openai.sdk  # noqa: F401  # import openai now, not inside the first call's short test timeout
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "AZURE_OPENAI_TEST_KEY"
KEY = "azure-test-key-not-a-secret"
SAFETY_ENV = "AZURE_CONTENT_SAFETY_TEST_KEY"
SAFETY_KEY = "safety-test-key"
TOKEN = "entra-test-token"


class FixedTokenCredential:
    """An async azure-identity credential that always gives the same token and remembers the scopes asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


@pytest.fixture
def azure_server(llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> LLMTestServer:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SAFETY_ENV, SAFETY_KEY)
    llm_server.configure(api_key=KEY, bearer_token=TOKEN, safety_key=SAFETY_KEY)
    return llm_server


@pytest.fixture
def client_options(azure_server: LLMTestServer) -> dict[str, Any]:
    return {"endpoint": azure_server.url, "deployment": "gpt-4o-mini", "api_key_env": KEY_ENV}


@pytest.fixture
def safety_options(azure_server: LLMTestServer) -> dict[str, Any]:
    return {"endpoint": azure_server.url, "api_key_env": SAFETY_ENV}


@pytest.fixture
def token_credential() -> type[FixedTokenCredential]:
    """The credential class: ``token_credential()`` has the token the server accepts; ``token_credential("x")`` not."""
    return FixedTokenCredential
