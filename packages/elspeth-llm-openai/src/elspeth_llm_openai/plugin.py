"""Entry point of ``elspeth-llm-openai``: registers the ``openai`` LLM client.

Imports only ``elspeth`` and light local modules; the ``openai`` SDK is imported on the client's first
call, so ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_llm_openai.client import OpenAIClient


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``openai`` client."""
    register(OpenAIClient)
