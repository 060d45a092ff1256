from __future__ import annotations

from typing import Any

import pytest

from elspeth_llm_anthropic import AnthropicClient
from elspeth_testing import LLMClientContract
from elspeth_testing.llm_server import LLMTestServer


class TestAnthropicClientContract(LLMClientContract):
    plugin_class = AnthropicClient

    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, options: dict[str, Any]) -> dict[str, Any]:
        return options
