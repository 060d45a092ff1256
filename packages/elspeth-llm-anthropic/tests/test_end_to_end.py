"""`elspeth run` in a subprocess: an experiment whose `llm` is `anthropic`, pointed at the test server."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth_testing import LLMRunContract
from elspeth_testing.llm_server import LLMTestServer


class TestAnthropicRuns(LLMRunContract):
    plugin = "anthropic"
    answer_path = "/v1/messages"
    foreign_endpoint = "https://api.anthropic.com"
    retried_faults = ("429", "529", "drop")

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "max_tokens": 200, "temperature": 0}
