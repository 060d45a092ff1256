from __future__ import annotations

from typing import Any

import pytest

import elspeth_llm_gemini.batch  # noqa: F401  # the SDK and the batch side now, not in a call's short timeout or a thread
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "GEMINI_TEST_KEY"
KEY = "AIza-gemini-test-not-a-secret"
TOKEN_ENV = "VERTEX_TEST_TOKEN"
TOKEN = "ya29.vertex-test-token-not-a-secret"
GOOGLE_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
)


@pytest.fixture
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No key, project or credentials of the developer's own; ADC pointed at nothing."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-adc.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def keyed_server(llm_server: LLMTestServer, google_env: None) -> LLMTestServer:
    llm_server.configure(api_key=KEY, bearer_token=TOKEN)
    return llm_server


@pytest.fixture
def options(keyed_server: LLMTestServer) -> dict[str, Any]:
    """The Gemini API, with a key."""
    return {"model": "gemini-test", "base_url": keyed_server.url, "api_key_env": KEY_ENV}


@pytest.fixture
def vertex_options(keyed_server: LLMTestServer) -> dict[str, Any]:
    """Vertex AI, with a project, a location and an access token."""
    return {
        "model": "gemini-test",
        "vertexai": True,
        "project": "elspeth-test",
        "location": "europe-west4",
        "access_token_env": TOKEN_ENV,
        "base_url": keyed_server.url,
    }
