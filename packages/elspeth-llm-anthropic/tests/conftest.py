from __future__ import annotations

from typing import Any

import pytest

import elspeth_llm_anthropic.batch  # noqa: F401  # the SDK and the batch side now, not in a call's short timeout or a thread
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "ANTHROPIC_TEST_KEY"
KEY = "sk-ant-test-not-a-secret"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture
def keyed_server(llm_server: LLMTestServer, api_key: str) -> LLMTestServer:
    llm_server.configure(api_key=api_key)
    return llm_server


@pytest.fixture
def options(keyed_server: LLMTestServer) -> dict[str, Any]:
    return {"model": "claude-test", "base_url": keyed_server.url, "api_key_env": KEY_ENV}
