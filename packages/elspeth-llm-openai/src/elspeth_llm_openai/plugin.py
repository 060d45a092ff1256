"""Entry point of ``elspeth-llm-openai``: registers the ``openai`` LLM client.

Imports only ``elspeth``: the client is registered by reference and its module loads when first used,
the ``openai`` SDK on its first call, so ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``openai`` client."""
    register(
        "elspeth_llm_openai.client:OpenAIClient",
        name="openai",
        description="Chat completions from OpenAI or any OpenAI-compatible endpoint, through the ``openai`` SDK.",
    )
