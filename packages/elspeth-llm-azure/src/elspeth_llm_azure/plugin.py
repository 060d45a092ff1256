"""Entry point of ``elspeth-llm-azure``: registers ``azure_openai`` and the Content Safety middleware.

Imports only ``elspeth`` and light local modules; ``openai``, ``httpx`` and ``azure.identity`` are
imported on first use, so ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_llm_azure.client import AzureOpenAIClient
from elspeth_llm_azure.content_safety import ContentSafety
from elspeth_llm_azure.prompt_shield import PromptShield


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``azure_openai`` client."""
    register(AzureOpenAIClient)


@hookimpl
def register_llm_middleware(register: Registrar) -> None:
    """Register the Content Safety middleware."""
    register(ContentSafety)
    register(PromptShield)
