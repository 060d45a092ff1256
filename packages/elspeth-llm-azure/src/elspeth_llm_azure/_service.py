"""The HTTP side of the Content Safety middleware: one operation of the service, its errors, its retries.

Failures become :mod:`elspeth.llm_errors` exceptions classed as the LLM clients' are: 429 is
:class:`~elspeth.llm_errors.LLMRateLimited` (with ``Retry-After``), 5xx and a reply that is not the
expected JSON are :class:`~elspeth.llm_errors.LLMServerError`, timeouts and dropped connections are
retryable too, and 400/401/403/404 are :class:`~elspeth.llm_errors.LLMRequestRejected`, never
retried. A redirect (3xx) is never followed: it is :class:`~elspeth.llm_errors.LLMRedirectRefused`,
naming the ``Location``, and is not retried. Retryable failures are retried with the run's ``retry``
policy, handed over by the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from elspeth import (
    ConfigError,
    LLMConnectionError,
    LLMRateLimited,
    LLMRequestRejected,
    LLMServerError,
    LLMTimeout,
    RetryPolicy,
    parse_retry_after,
    redirect_refused,
    retry_call,
    scrub_secrets,
    secret_from_env,
)

__all__ = ["MAX_TEXT", "Service", "ServiceOptions", "chunks"]

T = TypeVar("T")

MAX_TEXT = 10_000  # the service's limit per analysed text
OVERLAP = 1_000  # chunks overlap by this much, so a phrase shorter than it is never cut in two

_ONE_ATTEMPT = RetryPolicy(max_attempts=1, timeout_s=None)
_REJECTED_HINT = {
    401: " (check the key in the variable named by `api_key_env`)",
    403: " (the key may not use this resource; check `api_key_env` and `endpoint`)",
    404: " (check `endpoint` and `api_version`)",
}


def chunks(text: str, size: int = MAX_TEXT, overlap: int = OVERLAP) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters, each overlapping the previous by ``overlap``."""
    if len(text) <= size:
        return [text]
    step = size - overlap
    return [text[i : i + size] for i in range(0, len(text) - overlap, step)]


class ServiceOptions(BaseModel):
    """Options every Content Safety middleware shares."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(description="the Content Safety resource, e.g. https://my-cs.cognitiveservices.azure.com")
    api_key_env: str = Field(
        "AZURE_CONTENT_SAFETY_KEY", description="environment variable holding the `Ocp-Apim-Subscription-Key`"
    )
    api_version: str = Field("2024-09-01", description="the Content Safety API version")
    on_error: Literal["abort", "skip"] = Field(
        "abort",
        description="when the service still fails after the run's retries: abort the call, or skip screening (logged)",
    )
    timeout: float = Field(10.0, gt=0, description="seconds one screening request may take")
    max_connections: int = Field(64, ge=1, description="HTTP connections to the service kept open at most")


async def _aclose(http: Any) -> None:
    await http.aclose()


class Service:
    """An HTTP client for one Content Safety operation, one connection pool per event loop.

    Args:
        plugin: the middleware's name, for messages.
        options: the shared options.
        operation: ``analyze`` or ``shieldPrompt``.

    """

    def __init__(self, plugin: str, options: ServiceOptions, operation: str) -> None:
        self.plugin = plugin
        self.options = options
        key = secret_from_env(options.api_key_env)
        if not key:
            raise ConfigError(
                f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the "
                "Content Safety key there"
            )
        self._key = key
        self.endpoint = options.endpoint.rstrip("/")
        self.url = f"{self.endpoint}/contentsafety/text:{operation}"
        self.where = f"{plugin} at {self.endpoint}"
        self.retry = _ONE_ATTEMPT
        self._http: Any = None

    def _make(self) -> Any:
        import httpx

        limits = httpx.Limits(
            max_connections=self.options.max_connections, max_keepalive_connections=self.options.max_connections
        )
        return httpx.AsyncClient(timeout=self.options.timeout, limits=limits, follow_redirects=False)

    async def post(self, body: dict[str, Any], read: Callable[[dict[str, Any]], T]) -> T:
        """POST ``body`` and return ``read(reply)``, retrying what may succeed again under the run's policy.

        Args:
            body: the JSON request.
            read: checks and reads the reply's JSON object; raises :class:`~elspeth.llm_errors.LLMServerError`
                for a reply without what the operation promises, which is retried like a 5xx.

        """

        async def attempt() -> T:
            return read(await self._post_once(body))

        return await retry_call(self.retry, attempt, self.where)

    async def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        from elspeth_llm_openai import LoopBoundSDK

        if self._http is None:
            self._http = LoopBoundSDK(self._make, _aclose)
        http = await self._http.get()
        where = self.where
        try:
            reply = await http.post(
                self.url,
                params={"api-version": self.options.api_version},
                headers={"Ocp-Apim-Subscription-Key": self._key},
                json=body,
            )
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"{where}: no answer within {self.options.timeout} s (option `timeout`)") from exc
        except httpx.HTTPError as exc:
            raise LLMConnectionError(f"{where}: {type(exc).__name__}: {scrub_secrets(str(exc))}") from exc
        status = reply.status_code
        if 300 <= status < 400:
            raise redirect_refused(where, status, scrub_secrets(reply.headers.get("location") or "") or None)
        if status != 200:
            text = f"{where}: HTTP {status}: {scrub_secrets(reply.text)[:200]}"  # a service may echo the key
            retry_after = parse_retry_after(reply.headers)
            if status == 429:
                raise LLMRateLimited(text, status=status, retry_after=retry_after)
            if status == 408:
                raise LLMTimeout(text, status=status)
            if status >= 500:
                raise LLMServerError(text, status=status, retry_after=retry_after)
            raise LLMRequestRejected(text + _REJECTED_HINT.get(status, ""), status=status)
        try:
            data = reply.json()
        except ValueError as exc:
            shown = scrub_secrets(reply.text)[:80]
            raise LLMServerError(f"{where}: the reply is not JSON: {shown!r}", status=status) from exc
        if not isinstance(data, dict):
            raise LLMServerError(
                f"{where}: the reply is not a JSON object: {scrub_secrets(reply.text)[:80]!r}", status=status
            )
        return data

    async def aclose(self) -> None:
        """Close the connection pool now."""
        if self._http is not None:
            await self._http.aclose()
