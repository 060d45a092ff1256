"""`elspeth run` in a subprocess: an experiment whose `llm` is `bedrock`, pointed at the test server."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth_testing import LLMRunContract
from elspeth_testing.llm_server import LLMTestServer


class TestBedrockRuns(LLMRunContract):
    plugin = "bedrock"
    answer_path = "/model/anthropic.claude-test-v1:0/converse"
    foreign_endpoint = "https://bedrock-runtime.eu-west-1.amazonaws.com"

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "max_tokens": 200, "temperature": 0}
