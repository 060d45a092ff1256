"""Azure AI Content Safety middleware: ``azure_content_safety`` (harm categories) and ``azure_prompt_shield``."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import ConfigError, LLMRequest, LLMResponse
from elspeth.llm_errors import LLMConnectionError, LLMContentRefused, LLMError, LLMServerError, LLMTimeout

__all__ = ["ContentSafety", "ContentSafetyOptions", "PromptShield", "PromptShieldOptions"]

log = logging.getLogger("elspeth.azure_content_safety")
Category = Literal["Hate", "SelfHarm", "Sexual", "Violence"]
MAX_TEXT = 10_000  # the service's limit per analysed text


class _ServiceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(description="the Content Safety resource, e.g. https://my-cs.cognitiveservices.azure.com")
    api_key_env: str = Field(
        "AZURE_CONTENT_SAFETY_KEY", description="environment variable holding the `Ocp-Apim-Subscription-Key`"
    )
    api_version: str = Field("2024-09-01", description="the Content Safety API version")
    on_error: Literal["abort", "skip"] = Field(
        "abort", description="when the service fails: abort the call, or skip screening (logged)"
    )
    timeout: float = Field(10.0, gt=0, description="seconds one screening request may take")
    max_connections: int = Field(64, ge=1, description="HTTP connections to the service kept open at most")


class _Service:
    """An HTTP client for one Content Safety operation, one connection pool per event loop."""

    def __init__(self, plugin: str, options: _ServiceOptions, operation: str) -> None:
        self.plugin = plugin
        self.options = options
        key = os.environ.get(options.api_key_env)
        if not key:
            raise ConfigError(
                f"environment variable {options.api_key_env} (option `api_key_env`) is not set: export the "
                "Content Safety key there"
            )
        self._key = key
        self.endpoint = options.endpoint.rstrip("/")
        self.url = f"{self.endpoint}/contentsafety/text:{operation}"
        self._http: Any = None

    def _make(self) -> Any:
        import httpx

        limits = httpx.Limits(
            max_connections=self.options.max_connections, max_keepalive_connections=self.options.max_connections
        )
        return httpx.AsyncClient(timeout=self.options.timeout, limits=limits)

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body``; HTTP and network failures become :mod:`elspeth.llm_errors` exceptions."""
        import httpx

        from elspeth_llm_azure._loop import LoopBoundSDK

        if self._http is None:
            self._http = LoopBoundSDK(self._make, _aclose)
        http = await self._http.get()
        where = f"{self.plugin} at {self.endpoint}"
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
            raise LLMConnectionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code != 200:
            hint = " (check the key in `api_key_env`)" if reply.status_code in {401, 403} else ""
            raise LLMServerError(
                f"{where}: HTTP {reply.status_code}: {reply.text[:200]}{hint}", status=reply.status_code
            )
        try:
            data = reply.json()
        except ValueError as exc:
            raise LLMServerError(f"{where}: the reply is not JSON: {reply.text[:80]!r}") from exc
        if not isinstance(data, dict):
            raise LLMServerError(f"{where}: the reply is not a JSON object")
        return data

    async def aclose(self) -> None:
        """Close the connection pool now."""
        if self._http is not None:
            await self._http.aclose()


async def _aclose(http: Any) -> None:
    await http.aclose()


def _chunks(text: str) -> list[str]:
    return [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]


def _all_categories() -> list[Category]:
    return ["Hate", "SelfHarm", "Sexual", "Violence"]


class ContentSafetyOptions(_ServiceOptions):
    """Options of ``azure_content_safety``."""

    categories: list[Category] = Field(default_factory=_all_categories, description="harm categories to check")
    severity_threshold: int = Field(4, ge=0, le=7, description="a severity at or above this is a violation")
    thresholds: dict[Category, int] = Field(
        default_factory=dict, description="per-category thresholds overriding `severity_threshold`, e.g. {Hate: 2}"
    )
    on_violation: Literal["abort", "mask", "log"] = Field(
        "abort", description="abort the call, replace the flagged text with `mask`, or only log"
    )
    mask: str = Field("[CONTENT BLOCKED]", description="what replaces flagged text when on_violation is mask")
    screen_system: bool = Field(False, description="also screen the system prompt")
    screen_responses: bool = Field(False, description="also screen the LLM's replies")


class ContentSafety:
    """Screens prompts (and optionally replies) with Azure AI Content Safety's harm categories.

    A text is flagged when a category's severity reaches its threshold. ``abort`` raises
    :class:`~elspeth.llm_errors.LLMContentRefused` (never retried), naming the category and severity.
    """

    name = "azure_content_safety"
    Options = ContentSafetyOptions

    def __init__(self, options: ContentSafetyOptions) -> None:
        self.options = options
        self._service = _Service(self.name, options, "analyze")
        self.endpoint = self._service.endpoint

    async def _violations(self, text: str) -> list[tuple[str, int, int]]:
        opts = self.options
        replies = await asyncio.gather(
            *(self._service.post({"text": c, "categories": list(opts.categories)}) for c in _chunks(text))
        )
        worst: dict[str, int] = {}
        for reply in replies:
            items = reply.get("categoriesAnalysis")
            if not isinstance(items, list):
                raise LLMServerError(f"{self.name}: the reply has no `categoriesAnalysis`: {str(reply)[:120]}")
            for item in items:
                category, severity = str(item.get("category")), int(item.get("severity") or 0)
                worst[category] = max(worst.get(category, 0), severity)
        found = []
        for category, severity in sorted(worst.items()):
            limit = opts.thresholds.get(category, opts.severity_threshold)  # type: ignore[call-overload]
            if severity >= limit:
                found.append((category, severity, limit))
        return found

    async def _screen(self, text: str, what: str, metadata: dict[str, Any]) -> bool:
        """Whether ``text`` must be masked; raises on abort. Records the outcome in ``metadata``."""
        results = metadata.setdefault("content_safety", {})
        try:
            found = await self._violations(text)
        except LLMError as exc:
            if self.options.on_error == "abort":
                raise
            log.warning("%s: %s not screened (on_error: skip): %s", self.name, what, exc)
            results[what] = "skipped"
            return False
        results[what] = {c: s for c, s, _ in found}
        if not found:
            return False
        detail = ", ".join(f"{c} severity {s} (threshold {t})" for c, s, t in found)
        message = f"{self.name}: the {what} was flagged: {detail}"
        if self.options.on_violation == "abort":
            raise LLMContentRefused(message)
        log.warning("%s; row %s", message, metadata.get("row_id", "?"))
        return self.options.on_violation == "mask"

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Screen the user prompt (and the system prompt if asked); abort, mask or log a violation."""
        screens = [self._screen(request.user, "user prompt", request.metadata)]
        if self.options.screen_system and request.system:
            screens.append(self._screen(request.system, "system prompt", request.metadata))
        masks = await asyncio.gather(*screens)
        if not any(masks):
            return request
        user = self.options.mask if masks[0] else request.user
        system = self.options.mask if len(masks) > 1 and masks[1] else request.system
        return replace(request, user=user, system=system)

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        """Screen the reply when ``screen_responses`` is on."""
        if not self.options.screen_responses:
            return response
        if await self._screen(response.content, "response", request.metadata):
            return replace(response, content=self.options.mask)
        return response

    async def aclose(self) -> None:
        """Close the connection pool now (it also closes with the event loop)."""
        await self._service.aclose()


class PromptShieldOptions(_ServiceOptions):
    """Options of ``azure_prompt_shield``."""

    on_attack: Literal["abort", "mask", "log"] = Field(
        "abort", description="abort the call, replace the user prompt with `mask`, or only log"
    )
    mask: str = Field("[PROMPT BLOCKED]", description="what replaces the user prompt when on_attack is mask")
    system_as_document: bool = Field(
        False, description="also send the system prompt as a document (to catch attacks hidden in it)"
    )


class PromptShield:
    """Detects prompt attacks (jailbreaks, indirect injection) with Azure AI Content Safety Prompt Shields.

    Sends the user prompt as ``userPrompt`` and, as ``documents``, any texts a processor put in
    ``request.metadata["documents"]`` (plus the system prompt if asked). ``abort`` raises
    :class:`~elspeth.llm_errors.LLMContentRefused`, never retried.
    """

    name = "azure_prompt_shield"
    Options = PromptShieldOptions

    def __init__(self, options: PromptShieldOptions) -> None:
        self.options = options
        self._service = _Service(self.name, options, "shieldPrompt")
        self.endpoint = self._service.endpoint

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Ask Prompt Shields about the prompt and documents; act on any attack detected."""
        documents = [str(d) for d in request.metadata.get("documents") or []]
        if self.options.system_as_document and request.system:
            documents.append(request.system)
        try:
            reply = await self._service.post({"userPrompt": request.user[:MAX_TEXT], "documents": documents})
        except LLMError as exc:
            if self.options.on_error == "abort":
                raise
            log.warning("%s: prompt not screened (on_error: skip): %s", self.name, exc)
            request.metadata["prompt_shield"] = "skipped"
            return request
        where = []
        if (reply.get("userPromptAnalysis") or {}).get("attackDetected"):
            where.append("the user prompt")
        for i, doc in enumerate(reply.get("documentsAnalysis") or []):
            if isinstance(doc, dict) and doc.get("attackDetected"):
                where.append(f"document {i + 1} of {len(documents)}")
        request.metadata["prompt_shield"] = {"attack": bool(where), "where": where}
        if not where:
            return request
        message = f"{self.name}: prompt attack detected in {', '.join(where)}"
        if self.options.on_attack == "abort":
            raise LLMContentRefused(message)
        log.warning("%s; row %s", message, request.metadata.get("row_id", "?"))
        if self.options.on_attack == "mask":
            return replace(request, user=self.options.mask)
        return request

    async def aclose(self) -> None:
        """Close the connection pool now (it also closes with the event loop)."""
        await self._service.aclose()
