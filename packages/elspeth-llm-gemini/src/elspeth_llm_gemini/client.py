"""The ``gemini`` LLM client: Gemini through the Gemini API (an API key) or Vertex AI (a project and location)."""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth import ConfigError, LLMRequest, LLMResponse, key_identity, secret_from_env

__all__ = ["GEMINI_API_URL", "GeminiClient", "GeminiOptions", "vertex_url"]

GEMINI_API_URL = "https://generativelanguage.googleapis.com"


def vertex_url(location: str) -> str:
    """Vertex AI's address for ``location``, as google-genai picks it when no ``base_url`` is given."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


class GeminiOptions(BaseModel):
    """Options of the ``gemini`` client."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model to call, e.g. gemini-2.5-flash")
    vertexai: bool = Field(False, description="call Vertex AI (`project`, `location`), not the Gemini API")
    api_key_env: str = Field("GEMINI_API_KEY", description="Gemini API: environment variable holding the API key")
    project: str | None = Field(None, description="Vertex AI: the Google Cloud project")
    location: str = Field("global", description="Vertex AI: the region (e.g. europe-west4) or `global`")
    access_token_env: str | None = Field(
        None, description="Vertex AI: environment variable holding an OAuth access token (default: ADC)"
    )
    credentials_file: str | None = Field(
        None, description="Vertex AI: a service account's JSON key file (default: application default credentials)"
    )
    base_url: str | None = Field(None, description="the API's address (default: the Gemini API's or Vertex AI's)")
    api_version: str | None = Field(None, description="the API version in the path (default: the SDK's, v1beta(1))")
    max_tokens: int | None = Field(None, gt=0, description="longest reply in tokens (`maxOutputTokens`)")
    temperature: float | None = Field(None, ge=0, le=2, description="sampling temperature (default: the model's)")
    top_p: float | None = Field(None, ge=0, le=1, description="nucleus sampling (`topP`)")
    stop: list[str] = Field(default_factory=list, description="stop sequences (`stopSequences`)")
    json_schema: dict[str, Any] | None = Field(
        None, description="a JSON schema the reply must follow (`responseMimeType: application/json`)"
    )
    safety_settings: dict[str, str] = Field(
        default_factory=dict, description="harm category to block threshold, e.g. HARM_CATEGORY_HARASSMENT: BLOCK_NONE"
    )
    timeout: float = Field(60.0, gt=0, description="seconds one HTTP request may take before it counts as timed out")
    max_connections: int = Field(256, ge=1, le=10_000, description="HTTP connections kept open at most")
    params: dict[str, Any] = Field(
        default_factory=dict, description="further GenerateContentConfig fields (top_k, seed, thinking_config, ...)"
    )

    @model_validator(mode="after")
    def _one_backend(self) -> Self:
        vertex_only = [n for n in ("project", "access_token_env", "credentials_file") if getattr(self, n) is not None]
        if not self.vertexai and vertex_only:
            raise ValueError(f"{', '.join(vertex_only)} only apply to Vertex AI: set `vertexai: true`")
        if self.vertexai and not self.project:
            raise ValueError("Vertex AI needs `project` (and `location`, default global)")
        if self.access_token_env and self.credentials_file:
            raise ValueError("give one of `access_token_env` and `credentials_file`, not both")
        return self


class GeminiClient:
    """Replies from Gemini, through ``google-genai``'s async client on an ``httpx`` client of its own.

    The SDK's retries are off and redirects are not followed: Elspeth's pipeline retries 429
    (``RESOURCE_EXHAUSTED``, with its ``RetryInfo`` delay), 5xx (``UNAVAILABLE``, ...), timeouts and
    dropped connections, and never retries 400/401/403/404 or a safety block.
    """

    name = "gemini"
    supports_seed = True  # ``seed`` in the request's params is sent: an experiment's epochs each get their own
    Options = GeminiOptions

    def __init__(self, options: GeminiOptions) -> None:
        self.options = options
        self._secret: str | None = None
        if options.vertexai:
            self._secret = self._vertex_token(options)
            self.endpoint = (options.base_url or vertex_url(options.location)).rstrip("/")
            where = f"gemini {options.model} on Vertex AI ({options.project}, {options.location})"
            self.key_id = key_identity(self._secret) if self._secret else f"vertex {options.credentials_file or 'adc'}"
        else:
            self._secret = secret_from_env(options.api_key_env)  # registered: scrubbed from whatever is echoed
            if not self._secret:
                raise ConfigError(
                    f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the "
                    "Gemini API key there (or set `vertexai: true` with a `project`)"
                )
            self.endpoint = (options.base_url or GEMINI_API_URL).rstrip("/")
            where = f"gemini {options.model}"
            self.key_id = key_identity(self._secret)
        self._where = f"{where} at {self.endpoint}"
        self._sdk: Any = None

    @staticmethod
    def _vertex_token(options: GeminiOptions) -> str | None:
        if options.credentials_file is not None and not os.path.isfile(options.credentials_file):
            raise ConfigError(f"option `credentials_file`: {options.credentials_file} is not a file")
        if options.access_token_env is None:
            return None
        token = secret_from_env(options.access_token_env)
        if not token:
            raise ConfigError(
                f"environment variable {options.access_token_env} (option `access_token_env`) is not set: export "
                "an access token there (e.g. `gcloud auth print-access-token`)"
            )
        return token

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.options.model!r}, endpoint={self.endpoint!r})"

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Generate one reply; SDK failures become :mod:`elspeth.llm_errors` exceptions.

        ``request.params`` override the options' config fields for this call.
        """
        if self._sdk is None:
            await asyncio.to_thread(importlib.import_module, "elspeth_llm_gemini.sdk")
        from elspeth_llm_gemini.sdk import LoopBoundSDK, generation_config, make_sdk, send

        config = generation_config(self.options, request, self._where)
        if self._sdk is None:
            self._sdk = LoopBoundSDK(lambda: make_sdk(self.options, self._secret), close=lambda s: s.aclose())
        return await send(await self._sdk.get(), self.options.model, request.user, config, self._where)

    async def aclose(self) -> None:
        """Close the HTTP connections now; a later call opens new ones."""
        if self._sdk is not None:
            await self._sdk.aclose()
