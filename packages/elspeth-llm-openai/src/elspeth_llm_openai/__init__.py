"""Elspeth's ``openai`` LLM client: OpenAI and any OpenAI-compatible endpoint, through the ``openai`` SDK.

Configure it in the settings' ``llm``::

    llm:
      plugin: openai
      options:
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY

The SDK plumbing other OpenAI-SDK clients share (``elspeth-llm-azure`` uses it: Azure OpenAI is the
same SDK, so one translation of its errors and one event-loop binding serve both) is public here too:
:func:`build_http_client`, :func:`send`, :func:`chat_params`, :class:`LoopBoundSDK`,
:func:`check_response_format` and :class:`OpenAIBatches` (the Batch API). The names that need the
``openai`` SDK load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_llm_openai.batches import OpenAIBatches
    from elspeth_llm_openai.client import OpenAIClient, OpenAIOptions, chat_params, check_response_format
    from elspeth_llm_openai.loop import LoopBoundSDK
    from elspeth_llm_openai.sdk import build_http_client, send

__version__ = "0.1.0"

_LAZY = {
    "LoopBoundSDK": "elspeth_llm_openai.loop",
    "OpenAIBatches": "elspeth_llm_openai.batches",
    "OpenAIClient": "elspeth_llm_openai.client",
    "OpenAIOptions": "elspeth_llm_openai.client",
    "chat_params": "elspeth_llm_openai.client",
    "check_response_format": "elspeth_llm_openai.client",
    "build_http_client": "elspeth_llm_openai.sdk",
    "send": "elspeth_llm_openai.sdk",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "LoopBoundSDK",
    "OpenAIBatches",
    "OpenAIClient",
    "OpenAIOptions",
    "build_http_client",
    "chat_params",
    "check_response_format",
    "send",
]
