"""Entry point of ``elspeth-llm-gemini``: registers the ``gemini`` LLM client (by reference, so cheap)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``gemini`` client."""
    register(
        "elspeth_llm_gemini.client:GeminiClient",
        name="gemini",
        description="Gemini, through the Gemini API or Vertex AI, with the ``google-genai`` SDK.",
    )
