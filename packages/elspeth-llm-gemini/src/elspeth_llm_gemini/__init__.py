"""Elspeth's ``gemini`` LLM client: the Gemini API (an API key) or Vertex AI (a project and location).

Configure it in the settings' ``llm``::

    llm:
      plugin: gemini
      options:
        model: gemini-2.5-flash
        api_key_env: GEMINI_API_KEY

The client loads on first use, ``google-genai`` on the first call, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_llm_gemini.client import GeminiClient, GeminiOptions

__version__ = "0.1.0"

_LAZY = {
    "GeminiClient": "elspeth_llm_gemini.client",
    "GeminiOptions": "elspeth_llm_gemini.client",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["GeminiClient", "GeminiOptions"]
