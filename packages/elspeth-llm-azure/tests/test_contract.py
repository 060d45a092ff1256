from __future__ import annotations

from typing import Any

import pytest

from elspeth_llm_azure import AzureOpenAIClient, ContentSafety, PromptShield
from elspeth_testing import LLMClientContract, MiddlewareContract


class TestAzureOpenAIClientContract(LLMClientContract):
    plugin_class = AzureOpenAIClient

    @pytest.fixture
    def plugin_options(self, client_options: dict[str, Any]) -> dict[str, Any]:
        return client_options


class TestContentSafetyContract(MiddlewareContract):
    plugin_class = ContentSafety

    @pytest.fixture
    def plugin_options(self, safety_options: dict[str, Any]) -> dict[str, Any]:
        return {**safety_options, "screen_responses": True, "screen_system": True}


class TestPromptShieldContract(MiddlewareContract):
    plugin_class = PromptShield

    @pytest.fixture
    def plugin_options(self, safety_options: dict[str, Any]) -> dict[str, Any]:
        return {**safety_options, "system_as_document": True}
