"""Entry point of ``elspeth-llm-bedrock``: registers the ``bedrock`` LLM client (by reference, so cheap)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_llm_clients(register: Registrar) -> None:
    """Register the ``bedrock`` client."""
    register(
        "elspeth_llm_bedrock.client:BedrockClient",
        name="bedrock",
        description="The Amazon Bedrock Converse API, through ``boto3``.",
    )
