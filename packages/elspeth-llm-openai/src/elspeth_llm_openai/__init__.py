"""Elspeth's ``openai`` LLM client: OpenAI and any OpenAI-compatible endpoint, through the ``openai`` SDK.

Configure it in the settings' ``llm``::

    llm:
      plugin: openai
      options:
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
"""

from elspeth_llm_openai.client import OpenAIClient, OpenAIOptions

__version__ = "0.1.0"

__all__ = ["OpenAIClient", "OpenAIOptions"]
