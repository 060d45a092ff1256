"""Entry point of ``elspeth-llm-anthropic``: registers the ``anthropic`` LLM client (by reference, so cheap)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``anthropic`` client."""
    register(
        "elspeth_llm_anthropic.client:AnthropicClient",
        name="anthropic",
        description="The Anthropic Messages API (Claude), through the ``anthropic`` SDK.",
    )
