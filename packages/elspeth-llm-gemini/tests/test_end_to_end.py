"""`elspeth run` in a subprocess: an experiment whose `llm` is `gemini`, on each backend, pointed at the test server."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth_testing import LLMRunContract
from elspeth_testing.llm_server import LLMTestServer


class TestGeminiRuns(LLMRunContract):
    plugin = "gemini"
    answer_path = "/v1beta/models/gemini-test:generateContent"
    foreign_endpoint = "https://generativelanguage.googleapis.com"

    @pytest.fixture
    def fault_server(self, keyed_server: LLMTestServer) -> LLMTestServer:
        return keyed_server

    @pytest.fixture
    def plugin_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "api_version": "v1beta", "max_tokens": 200, "temperature": 0}


class TestVertexRuns(TestGeminiRuns):
    answer_path = (
        "/v1beta1/projects/elspeth-test/locations/europe-west4/publishers/google/models/gemini-test:generateContent"
    )
    foreign_endpoint = "https://europe-west4-aiplatform.googleapis.com"

    @pytest.fixture
    def plugin_options(self, vertex_options: dict[str, Any]) -> dict[str, Any]:
        return {**vertex_options, "max_tokens": 200, "temperature": 0}
