"""Elspeth's ``anthropic`` LLM client: the Anthropic Messages API, through the ``anthropic`` SDK.

Configure it in the settings' ``llm``::

    llm:
      plugin: anthropic
      options:
        model: claude-sonnet-4-5
        max_tokens: 1024
        api_key_env: ANTHROPIC_API_KEY

The client loads on first use, the SDK on the first call, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_llm_anthropic.client import AnthropicClient, AnthropicOptions

__version__ = "0.1.0"

_LAZY = {
    "AnthropicClient": "elspeth_llm_anthropic.client",
    "AnthropicOptions": "elspeth_llm_anthropic.client",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["AnthropicClient", "AnthropicOptions"]
