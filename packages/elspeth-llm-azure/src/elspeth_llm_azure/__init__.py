"""Elspeth's Azure LLM plugins: the ``azure_openai`` client and Azure AI Content Safety middleware.

Configure them in the settings::

    llm:
      plugin: azure_openai
      options: {endpoint: https://my-resource.openai.azure.com, deployment: gpt-4o-mini, auth: entra}
    middleware:
      - plugin: azure_content_safety
        options: {endpoint: https://my-cs.cognitiveservices.azure.com, severity_threshold: 4}
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_llm_azure.client import AzureOpenAIClient, AzureOpenAIOptions
    from elspeth_llm_azure.content_safety import ContentSafety, ContentSafetyOptions
    from elspeth_llm_azure.prompt_shield import PromptShield, PromptShieldOptions

# names load on first use, so that importing the package (its entry point is ``elspeth_llm_azure.plugin``) stays cheap
_LAZY = {
    "AzureOpenAIClient": "elspeth_llm_azure.client",
    "AzureOpenAIOptions": "elspeth_llm_azure.client",
    "ContentSafety": "elspeth_llm_azure.content_safety",
    "ContentSafetyOptions": "elspeth_llm_azure.content_safety",
    "PromptShield": "elspeth_llm_azure.prompt_shield",
    "PromptShieldOptions": "elspeth_llm_azure.prompt_shield",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = [
    "AzureOpenAIClient",
    "AzureOpenAIOptions",
    "ContentSafety",
    "ContentSafetyOptions",
    "PromptShield",
    "PromptShieldOptions",
]
