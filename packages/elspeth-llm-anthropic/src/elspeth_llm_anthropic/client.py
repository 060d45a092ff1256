"""The ``anthropic`` LLM client: the Anthropic Messages API (Claude), through the ``anthropic`` SDK."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import (
    BatchItem,
    BatchLimits,
    BatchResult,
    BatchStatus,
    ConfigError,
    LLMRequest,
    LLMResponse,
    key_identity,
    secret_from_env,
)

__all__ = ["DEFAULT_BASE_URL", "AnthropicClient", "AnthropicOptions"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
BATCH_MAX_REQUESTS = 100_000  # Anthropic's limits per Message Batch
BATCH_MAX_BYTES = 256 * 1024 * 1024


class AnthropicOptions(BaseModel):
    """Options of the ``anthropic`` client."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model to call, e.g. claude-sonnet-4-5")
    max_tokens: int = Field(1024, gt=0, description="longest reply, in tokens (the Messages API requires one)")
    base_url: str | None = Field(None, description=f"the API's address (default {DEFAULT_BASE_URL})")
    api_key_env: str = Field("ANTHROPIC_API_KEY", description="environment variable that holds the API key")
    temperature: float | None = Field(None, ge=0, le=1, description="sampling temperature (default: the API's)")
    stop: list[str] = Field(default_factory=list, description="stop sequences (the API's `stop_sequences`)")
    json_schema: dict[str, Any] | None = Field(
        None, description="a JSON schema the reply must follow (structured output, `output_format`)"
    )
    cache_system: bool = Field(
        False, description="mark the system prompt for prompt caching (`cache_control: ephemeral`)"
    )
    timeout: float = Field(60.0, gt=0, description="seconds one HTTP request may take before it counts as timed out")
    max_connections: int = Field(256, ge=1, le=10_000, description="HTTP connections kept open at most")
    params: dict[str, Any] = Field(default_factory=dict, description="further Messages parameters (top_p, top_k, ...)")
    batch_max_requests: int = Field(
        BATCH_MAX_REQUESTS, ge=1, le=BATCH_MAX_REQUESTS, description="requests per Message Batch at most (batch API)"
    )
    batch_max_bytes: int = Field(
        BATCH_MAX_BYTES, ge=1024, le=BATCH_MAX_BYTES, description="bytes of one Message Batch's body at most"
    )


class AnthropicClient:
    """Messages from the Anthropic API, through the ``anthropic`` SDK.

    The SDK's own retries are off: Elspeth's pipeline retries (429 with ``retry-after``, 529
    overloaded, 5xx, timeouts, dropped connections) and never retries 400/401/403/404 or refusals.
    It is also a :class:`~elspeth.BatchingClient` over Message Batches (half price); Anthropic keeps
    nothing a caller chooses with a batch, so :meth:`find` cannot recover a lost id and says so.
    """

    name = "anthropic"
    Options = AnthropicOptions

    def __init__(self, options: AnthropicOptions) -> None:
        self.options = options
        key = secret_from_env(options.api_key_env)  # registered: scrubbed from whatever a server echoes
        if not key:
            raise ConfigError(
                f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the "
                "Anthropic API key there"
            )
        self._api_key = key
        self.key_id = key_identity(key)
        self.endpoint = (options.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._where = f"anthropic {options.model} at {self.endpoint}"
        self._sdk: Any = None

    def __repr__(self) -> str:
        return f"AnthropicClient(model={self.options.model!r}, endpoint={self.endpoint!r})"

    def _make_sdk(self) -> Any:
        import sys

        import anthropic

        # anthropic 0.x builds on httpx, later releases on httpx2: the Limits of whichever the SDK's client uses
        base = next(c for c in anthropic.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
        lib = sys.modules[base.__module__.split(".")[0]]
        size = self.options.max_connections
        limits = lib.Limits(max_connections=size, max_keepalive_connections=size)
        http = anthropic.DefaultAsyncHttpxClient(limits=limits, timeout=self.options.timeout, follow_redirects=False)
        return anthropic.AsyncAnthropic(
            api_key=self._api_key, base_url=self.endpoint, timeout=self.options.timeout, max_retries=0, http_client=http
        )

    async def _client(self) -> Any:
        if self._sdk is None:
            await asyncio.to_thread(importlib.import_module, "elspeth_llm_anthropic.sdk")
        from elspeth_llm_anthropic.sdk import LoopBoundSDK

        if self._sdk is None:  # again: concurrent first calls all waited for the import above
            self._sdk = LoopBoundSDK(self._make_sdk)
        return await self._sdk.get()

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Send one message; SDK failures become :mod:`elspeth.llm_errors` exceptions.

        ``request.params`` override the options' Messages parameters for this call.
        """
        sdk = await self._client()
        from elspeth_llm_anthropic.sdk import message_body, send

        return await send(sdk, message_body(self.options, request), self._where)

    # -- the batch API (elspeth.BatchingClient) ----------------------------------------------------

    @property
    def batch_limits(self) -> BatchLimits:
        """Requests and body bytes per Message Batch (Anthropic's 100,000 and 256 MB, or the options' lower ones)."""
        return BatchLimits(self.options.batch_max_requests, self.options.batch_max_bytes)

    def item_bytes(self, item: BatchItem) -> int:
        """Bytes the item's ``{"custom_id", "params"}`` entry adds to the batch body."""
        from elspeth_llm_anthropic.batch import item_size

        return item_size(self.options, item)

    async def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """Create a Message Batch of ``items`` (each the Messages body ``generate`` sends); ``tag`` is not kept."""
        sdk = await self._client()
        from elspeth_llm_anthropic.batch import submit

        return await submit(sdk, self.options, items, self._where)

    async def find(self, tag: str) -> str | None:
        """None: a Message Batch keeps nothing the caller chose, so a batch cannot be found by ``tag``."""
        return None

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's ``processing_status`` (``in_progress``, ``canceling``, ``ended``) and ``request_counts``."""
        sdk = await self._client()
        from elspeth_llm_anthropic.batch import poll

        return await poll(sdk, batch_id, self._where)

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        """Each item's outcome from the ended batch's results file (in the provider's order)."""
        sdk = await self._client()
        from elspeth_llm_anthropic.batch import results

        async for result in results(sdk, batch_id, self._where):
            yield result

    async def cancel(self, batch_id: str) -> None:
        """Ask Anthropic to cancel the batch."""
        sdk = await self._client()
        from elspeth_llm_anthropic.batch import cancel

        await cancel(sdk, batch_id, self._where)

    async def aclose(self) -> None:
        """Close the HTTP connections now; a later call opens new ones."""
        if self._sdk is not None:
            await self._sdk.aclose()
