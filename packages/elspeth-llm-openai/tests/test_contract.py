from __future__ import annotations

from typing import Any

import pytest

from elspeth_llm_openai import OpenAIClient
from elspeth_testing import LLMClientContract
from elspeth_testing.llm_server import LLMTestServer


class TestOpenAIClientContract(LLMClientContract):
    plugin_class = OpenAIClient

    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, options: dict[str, Any]) -> dict[str, Any]:
        return options


class TestOpenAIClientContractHttpx(TestOpenAIClientContract):
    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "transport": "httpx"}
