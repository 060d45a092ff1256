from __future__ import annotations

from typing import Any

import pytest

from elspeth_llm_gemini import GeminiClient
from elspeth_testing import LLMClientContract
from elspeth_testing.llm_server import LLMTestServer


class TestGeminiClientContract(LLMClientContract):
    plugin_class = GeminiClient

    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, options: dict[str, Any]) -> dict[str, Any]:
        return options


class TestVertexClientContract(LLMClientContract):
    plugin_class = GeminiClient

    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, vertex_options: dict[str, Any]) -> dict[str, Any]:
        return vertex_options
