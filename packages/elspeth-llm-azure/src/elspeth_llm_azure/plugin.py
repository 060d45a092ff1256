"""Entry point of ``elspeth-llm-azure``: registers ``azure_openai`` and the Content Safety middleware.

Imports only ``elspeth``: the plugins are registered by reference, so their modules load when first
used, and ``openai``, ``httpx`` and ``azure.identity`` on first call; ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``azure_openai`` client."""
    register(
        "elspeth_llm_azure.client:AzureOpenAIClient",
        name="azure_openai",
        description="Chat completions from an Azure OpenAI deployment, with an API key or a Microsoft Entra ID token.",
    )


@hookimpl
def register_llm_middleware(register: Registrar) -> None:
    """Register the Content Safety middleware."""
    register(
        "elspeth_llm_azure.content_safety:ContentSafety",
        name="azure_content_safety",
        description="Screens prompts (and optionally replies) with Azure AI Content Safety's harm categories.",
    )
    register(
        "elspeth_llm_azure.prompt_shield:PromptShield",
        name="azure_prompt_shield",
        description="Detects prompt attacks (jailbreaks, indirect injection) with Azure AI Content Safety Prompt "
        "Shields.",
    )
