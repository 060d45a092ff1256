"""The ``azure_openai`` LLM client: an Azure OpenAI deployment, with a key or an Entra ID token."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import ConfigError, LLMRequest, LLMResponse, key_identity, register_secret, secret_from_env
from elspeth_llm_openai import chat_params, check_response_format

__all__ = ["ENTRA_SCOPE", "AzureOpenAIClient", "AzureOpenAIOptions"]

ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureOpenAIOptions(BaseModel):
    """Options of the ``azure_openai`` client."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(description="the resource's endpoint, e.g. https://my-resource.openai.azure.com")
    deployment: str = Field(description="the deployment name (Azure's name for a deployed model)")
    api_version: str = Field("2024-10-21", description="the Azure OpenAI API version")
    auth: Literal["key", "entra"] = Field(
        "key", description="key: an API key from `api_key_env`; entra: a Microsoft Entra ID token (azure-identity)"
    )
    api_key_env: str = Field("AZURE_OPENAI_API_KEY", description="environment variable holding the key (auth: key)")
    temperature: float | None = Field(None, ge=0, le=2, description="sampling temperature (default: the service's)")
    max_tokens: int | None = Field(None, gt=0, description="longest reply, in tokens (default: the service's)")
    timeout: float = Field(60.0, gt=0, description="seconds one HTTP request may take before it counts as timed out")
    response_format: Any = Field(
        None, description="'json_object' for JSON mode, or {type: json_schema, json_schema: {name, schema, strict}}"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="further chat-completions parameters")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields sent as they are")
    max_connections: int = Field(256, ge=1, le=10_000, description="HTTP connections kept open at most")
    transport: Literal["aiohttp", "httpx"] = Field("aiohttp", description="the SDK's HTTP transport")

    @field_validator("response_format")
    @classmethod
    def _check_format(cls, value: Any) -> Any:
        return check_response_format(value)


class AzureOpenAIClient:
    """Chat completions from an Azure OpenAI deployment, with an API key or a Microsoft Entra ID token.

    Args:
        options: the validated options.
        credential: an async azure-identity token credential to use instead of ``DefaultAzureCredential``
            when ``auth`` is ``entra`` (for tests, or a credential built elsewhere).

    """

    name = "azure_openai"
    supports_seed = True  # ``seed`` in the request's params is sent: an experiment's epochs each get their own
    Options = AzureOpenAIOptions

    def __init__(self, options: AzureOpenAIOptions, credential: Any = None) -> None:
        self.options = options
        self._credential = credential
        self._api_key: str | None = None
        if options.auth == "key":
            self._api_key = secret_from_env(options.api_key_env)
            if not self._api_key:
                raise ConfigError(
                    f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the "
                    "Azure OpenAI key there, or use `auth: entra` to sign in with Microsoft Entra ID"
                )
        self.endpoint = options.endpoint.rstrip("/")
        # who the service meters: the key (by a non-reversible name) or the Entra ID identity
        self.key_id = "entra" if options.auth == "entra" else key_identity(self._api_key)
        self._where = f"azure_openai deployment {options.deployment} at {self.endpoint}"
        self._base = chat_params(options.deployment, options)
        self._sdk: Any = None

    def __repr__(self) -> str:
        return f"AzureOpenAIClient(deployment={self.options.deployment!r}, endpoint={self.endpoint!r})"

    def _make_sdk(self) -> Any:
        import openai

        from elspeth_llm_openai import build_http_client

        opts = self.options
        auth: dict[str, Any] = {"api_key": self._api_key}
        owned = None
        if opts.auth == "entra":
            from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

            credential = self._credential
            if credential is None:
                credential = owned = DefaultAzureCredential()
            auth = {"azure_ad_token_provider": _registering(get_bearer_token_provider(credential, ENTRA_SCOPE))}
        sdk = openai.AsyncAzureOpenAI(
            azure_endpoint=self.endpoint,
            azure_deployment=opts.deployment,
            api_version=opts.api_version,
            timeout=opts.timeout,
            max_retries=0,
            http_client=build_http_client(opts.transport, opts.max_connections, opts.timeout),
            **auth,
        )
        return _WithCredential(sdk, owned)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Send one chat completion to the deployment; failures become :mod:`elspeth.llm_errors` exceptions.

        ``request.params`` override the client's options for this call.
        """
        if self._sdk is None:
            await asyncio.to_thread(importlib.import_module, "elspeth_llm_openai.sdk")
        from elspeth_llm_openai import LoopBoundSDK, send

        if self._sdk is None:
            self._sdk = LoopBoundSDK(self._make_sdk)
        holder = await self._sdk.get()
        return await send(holder.sdk, self._base, request, self.options.extra_body, self._where)

    async def aclose(self) -> None:
        """Close the HTTP connections (and a credential the client made) now; they also close with the loop."""
        if self._sdk is not None:
            await self._sdk.aclose()


def _registering(provider: Callable[[], Awaitable[str]]) -> Callable[[], Awaitable[str]]:
    """A token provider whose every token is registered as a secret before it is sent."""

    async def token() -> str:
        value = await provider()
        register_secret(value, "entra_token")
        return value

    return token


class _WithCredential:
    """The SDK client and the credential this client created for it, closed together."""

    def __init__(self, sdk: Any, credential: Any) -> None:
        self.sdk = sdk
        self.credential = credential

    async def close(self) -> None:
        await self.sdk.close()
        if self.credential is not None:
            await self.credential.close()
