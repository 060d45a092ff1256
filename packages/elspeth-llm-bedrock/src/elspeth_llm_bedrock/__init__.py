"""Elspeth's ``bedrock`` LLM client: the Amazon Bedrock Converse API, through ``boto3``.

Configure it in the settings' ``llm``::

    llm:
      plugin: bedrock
      options:
        model: anthropic.claude-3-5-haiku-20241022-v1:0
        region: eu-west-1

Credentials come from the standard AWS chain (environment, profile, SSO, instance role). The
client loads on first use, ``boto3`` on the first call, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_llm_bedrock.client import BedrockClient, BedrockOptions

__version__ = "0.1.0"

_LAZY = {
    "BedrockClient": "elspeth_llm_bedrock.client",
    "BedrockOptions": "elspeth_llm_bedrock.client",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["BedrockClient", "BedrockOptions"]
