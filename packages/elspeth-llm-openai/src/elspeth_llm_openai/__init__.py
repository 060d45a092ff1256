"""Elspeth's ``openai`` LLM client: OpenAI and any OpenAI-compatible endpoint, through the ``openai`` SDK.

Configure it in the settings' ``llm``::

    llm:
      plugin: openai
      options:
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY
"""

from elspeth_llm_openai.__about__ import __version__ as __version__
from elspeth_llm_openai.client import OpenAIClient, OpenAIOptions

__all__ = ["OpenAIClient", "OpenAIOptions"]
