"""The ``openai`` LLM client: OpenAI, or any OpenAI-compatible endpoint (vLLM, Ollama, LM Studio, ...)."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import ConfigError, LLMRequest, LLMResponse, key_identity, secret_from_env

__all__ = ["DEFAULT_BASE_URL", "OpenAIClient", "OpenAIOptions"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_PLACEHOLDER_KEY = "no-key"  # the SDK insists on some key; a local server that wants none ignores it


def chat_params(model: str, options: Any) -> dict[str, Any]:
    """The request parameters every chat call of a client sends: ``model`` and the options' sampling settings.

    ``options`` has ``temperature``, ``max_tokens``, ``response_format`` and ``params`` (merged last),
    as :class:`OpenAIOptions` and ``elspeth-llm-azure``'s options do.
    """
    return {
        "model": model,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "response_format": options.response_format,
        **options.params,
    }


def check_response_format(value: Any) -> Any:
    """Accept ``"json_object"``/``"text"`` as shorthands, or an OpenAI ``response_format`` object."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in {"text", "json_object"}:
            raise ValueError("use 'text', 'json_object', or {type: json_schema, json_schema: {name, schema}}")
        return {"type": value}
    if not isinstance(value, dict) or value.get("type") not in {"text", "json_object", "json_schema"}:
        raise ValueError("response_format needs `type`: text, json_object or json_schema")
    if value["type"] == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not spec.get("name") or not isinstance(spec.get("schema"), dict):
            raise ValueError("a json_schema response_format needs json_schema: {name: ..., schema: {...}}")
    return value


class OpenAIOptions(BaseModel):
    """Options of the ``openai`` client."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model to call, e.g. gpt-4o-mini")
    base_url: str | None = Field(
        None, description=f"an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default {DEFAULT_BASE_URL})"
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable that holds the API key")
    allow_missing_key: bool = Field(
        False, description="allow the key's variable to be unset (a local server that needs no key)"
    )
    temperature: float | None = Field(None, ge=0, le=2, description="sampling temperature (default: the server's)")
    max_tokens: int | None = Field(None, gt=0, description="longest reply, in tokens (default: the server's)")
    timeout: float = Field(60.0, gt=0, description="seconds one HTTP request may take before it counts as timed out")
    response_format: Any = Field(
        None, description="'json_object' for JSON mode, or {type: json_schema, json_schema: {name, schema, strict}}"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="further chat-completions parameters (top_p, seed, stop, ...)"
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="extra JSON fields sent as they are (a compatible server's own parameters)"
    )
    max_connections: int = Field(
        256, ge=1, le=10_000, description="HTTP connections kept open at most; keep it at or above `concurrency`"
    )
    transport: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="the SDK's HTTP transport: aiohttp (faster, see the README) or its default httpx"
    )

    @field_validator("response_format")
    @classmethod
    def _check_format(cls, value: Any) -> Any:
        return check_response_format(value)


class OpenAIClient:
    """Chat completions from OpenAI or any OpenAI-compatible endpoint, through the ``openai`` SDK.

    The SDK's own retries are off: Elspeth's pipeline retries (429 with ``Retry-After``, 5xx, timeouts,
    dropped connections) and never retries 400/401/403/404 or content refusals.
    """

    name = "openai"
    supports_seed = True  # ``seed`` in the request's params is sent: an experiment's epochs each get their own
    Options = OpenAIOptions

    def __init__(self, options: OpenAIOptions) -> None:
        self.options = options
        key = secret_from_env(options.api_key_env)  # registered: scrubbed from whatever a server echoes
        if not key and not options.allow_missing_key:
            raise ConfigError(
                f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the API "
                "key there, or set `allow_missing_key: true` for a local endpoint that needs none"
            )
        self._api_key = key or _PLACEHOLDER_KEY
        self.key_id = key_identity(key)  # the adaptive limiter's lane: endpoint and key, never the key itself
        self.endpoint = (options.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._where = f"openai {options.model} at {self.endpoint}"
        self._base = chat_params(options.model, options)
        self._sdk: Any = None

    def __repr__(self) -> str:
        return f"OpenAIClient(model={self.options.model!r}, endpoint={self.endpoint!r})"

    def _make_sdk(self) -> Any:
        import openai

        from elspeth_llm_openai.sdk import build_http_client

        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.endpoint,
            timeout=self.options.timeout,
            max_retries=0,
            http_client=build_http_client(self.options.transport, self.options.max_connections, self.options.timeout),
        )

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Send one chat completion; SDK failures become :mod:`elspeth.llm_errors` exceptions.

        ``request.params`` override the client's options for this call (``temperature``,
        ``max_tokens``, ``response_format``, ``model``, or any other chat-completions parameter).
        """
        if self._sdk is None:
            # importing openai takes a second or more; do it off the event loop so other rows keep moving
            await asyncio.to_thread(importlib.import_module, "elspeth_llm_openai.sdk")
        from elspeth_llm_openai.sdk import LoopBoundSDK, send

        if self._sdk is None:
            self._sdk = LoopBoundSDK(self._make_sdk)
        return await send(await self._sdk.get(), self._base, request, self.options.extra_body, self._where)

    async def aclose(self) -> None:
        """Close the HTTP connections now (they also close with the event loop); a later call opens new ones."""
        if self._sdk is not None:
            await self._sdk.aclose()
