from __future__ import annotations

from typing import Any

import pytest

from elspeth_llm_bedrock import BedrockClient
from elspeth_testing import LLMClientContract
from elspeth_testing.llm_server import LLMTestServer


class TestBedrockClientContract(LLMClientContract):
    plugin_class = BedrockClient

    @pytest.fixture
    def plugin_options(self, keyed_server: LLMTestServer, options: dict[str, Any]) -> dict[str, Any]:
        return options
