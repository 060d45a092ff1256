"""The ``bedrock`` LLM client: the Amazon Bedrock Converse API, through ``boto3``'s ``bedrock-runtime``."""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import ConfigError, LLMRequest, LLMResponse, key_identity

__all__ = ["BedrockClient", "BedrockOptions", "default_endpoint"]


def default_endpoint(region: str) -> str:
    """The Bedrock runtime endpoint of ``region``: what boto3 calls when no ``endpoint_url`` is given."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class BedrockOptions(BaseModel):
    """Options of the ``bedrock`` client."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model id or inference profile, e.g. anthropic.claude-3-5-haiku-20241022-v1:0")
    region: str | None = Field(
        None, description="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region`)"
    )
    profile: str | None = Field(None, description="named profile of the AWS config files (default: the chain's own)")
    endpoint_url: str | None = Field(None, description="the runtime's address (default: the region's endpoint)")
    max_tokens: int | None = Field(None, gt=0, description="longest reply in tokens (`maxTokens`)")
    temperature: float | None = Field(None, ge=0, le=1, description="sampling temperature (default: the model's)")
    top_p: float | None = Field(None, ge=0, le=1, description="nucleus sampling (`topP`)")
    stop: list[str] = Field(default_factory=list, description="stop sequences (`stopSequences`)")
    json_schema: dict[str, Any] | None = Field(
        None, description="a JSON schema the reply must follow (structured output, `outputConfig.textFormat`)"
    )
    cache_system: bool = Field(False, description="put a `cachePoint` after the system prompt (prompt caching)")
    timeout: float = Field(60.0, gt=0, description="seconds one HTTP request may take (connect and read)")
    max_connections: int = Field(64, ge=1, le=1024, description="HTTP connections (and calling threads) at most")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="further Converse fields (additionalModelRequestFields, guardrailConfig, performanceConfig, ...)",
    )


def _region(options: BedrockOptions) -> str:
    region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import botocore.session  # type: ignore[import-untyped,unused-ignore]  # typed only with botocore-stubs

        region = botocore.session.Session(profile=options.profile).get_config_variable("region")
    if not region:
        raise ConfigError(
            "no AWS region for the bedrock client: set option `region`, or AWS_REGION, or `region` in the "
            "profile of ~/.aws/config"
        )
    return str(region)


class BedrockClient:
    """Replies from Amazon Bedrock's Converse API, through ``boto3`` (one client, its calls on a thread pool).

    botocore's own retries are off: Elspeth's pipeline retries throttling (``ThrottlingException``,
    429, with any ``Retry-After``), ``ServiceUnavailableException``, 5xx, model timeouts and dropped
    connections, and never retries ``ValidationException``, ``AccessDeniedException``, a missing
    model or credentials, or a guardrail's intervention.
    """

    name = "bedrock"
    Options = BedrockOptions

    def __init__(self, options: BedrockOptions) -> None:
        self.options = options
        self.region = _region(options)
        self.endpoint = (options.endpoint_url or default_endpoint(self.region)).rstrip("/")
        # the lane of the adaptive limiter: the access key when the environment names one, else the profile
        self.key_id = key_identity(os.environ.get("AWS_ACCESS_KEY_ID") or f"aws profile {options.profile or 'default'}")
        self._where = f"bedrock {options.model} at {self.endpoint}"
        self._runtime: Any = None
        self._building = threading.Lock()

    def __repr__(self) -> str:
        return f"BedrockClient(model={self.options.model!r}, region={self.region!r}, endpoint={self.endpoint!r})"

    def _build_runtime(self) -> Any:
        # on a worker thread: importing boto3 and building its client read files; the lock keeps it to one
        with self._building:
            if self._runtime is None:
                module = importlib.import_module("elspeth_llm_bedrock.sdk")
                self._runtime = module.Runtime(self.options, self.region, self._where)
            return self._runtime

    async def _get_runtime(self) -> Any:
        if self._runtime is not None:
            return self._runtime
        return await asyncio.to_thread(self._build_runtime)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Send one Converse request; botocore failures become :mod:`elspeth.llm_errors` exceptions.

        ``request.params`` override the options' Converse fields for this call.
        """
        runtime = await self._get_runtime()
        from elspeth_llm_bedrock.sdk import converse_body

        return await runtime.converse(converse_body(self.options, request))  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Close the HTTP connections and the calling threads now; a later call opens new ones."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
