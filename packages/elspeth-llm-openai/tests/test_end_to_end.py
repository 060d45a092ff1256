"""`elspeth run` in a subprocess: an experiment whose `llm` is `openai`, pointed at the test server."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth_testing import LLMRunContract
from elspeth_testing.llm_server import LLMTestServer


class TestOpenAIRuns(LLMRunContract):
    plugin = "openai"
    answer_path = "/v1/chat/completions"
    foreign_endpoint = "https://api.openai.com"
    rows = 40

    def endpoint(self, fault_server: LLMTestServer) -> str:
        return fault_server.openai_base_url

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "temperature": 0}
