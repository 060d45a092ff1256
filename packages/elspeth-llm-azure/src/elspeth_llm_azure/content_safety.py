"""``azure_content_safety``: screens prompts (and optionally replies) with Azure AI Content Safety's harm categories."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from elspeth import LLMContentRefused, LLMError, LLMRequest, LLMResponse, LLMServerError, RetryPolicy
from elspeth_llm_azure._service import MAX_TEXT, Service, ServiceOptions, chunks
from elspeth_llm_azure.prompt_shield import PromptShield, PromptShieldOptions

__all__ = ["MAX_TEXT", "ContentSafety", "ContentSafetyOptions", "PromptShield", "PromptShieldOptions"]

log = logging.getLogger("elspeth.azure_content_safety")
Category = Literal["Hate", "SelfHarm", "Sexual", "Violence"]


def _all_categories() -> list[Category]:
    return ["Hate", "SelfHarm", "Sexual", "Violence"]


class ContentSafetyOptions(ServiceOptions):
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


def _severities(where: str, reply: dict[str, Any]) -> dict[str, int]:
    """Each category's severity from a ``text:analyze`` reply; a reply without them is the service's error."""
    items = reply.get("categoriesAnalysis")
    if not isinstance(items, list):
        raise LLMServerError(f"{where}: the reply has no `categoriesAnalysis` list: {str(reply)[:120]}")
    found: dict[str, int] = {}
    for item in items:
        category = item.get("category") if isinstance(item, dict) else None
        severity = item.get("severity") if isinstance(item, dict) else None
        if not isinstance(category, str) or not isinstance(severity, int) or isinstance(severity, bool):
            raise LLMServerError(f"{where}: a `categoriesAnalysis` entry is not {{category, severity}}: {item!r:.120}")
        found[category] = max(found.get(category, 0), severity)
    return found


class ContentSafety:
    """Screens prompts (and optionally replies) with Azure AI Content Safety's harm categories.

    A text is flagged when a category's severity reaches its threshold. ``abort`` raises
    :class:`~elspeth.llm_errors.LLMContentRefused` (never retried), naming the category and severity.
    Texts over the service's 10,000-character limit are screened in overlapping pieces. A category
    asked for but missing from the reply is the service's error, never a pass.
    """

    name = "azure_content_safety"
    Options = ContentSafetyOptions

    def __init__(self, options: ContentSafetyOptions) -> None:
        self.options = options
        self._service = Service(self.name, options, "analyze")
        self.endpoint = self._service.endpoint
        # the URL every prompt is sent to: checked against `allowed_endpoints` before any row
        self.endpoints: tuple[str, ...] = (self._service.url,)

    def use_retry_policy(self, policy: RetryPolicy) -> None:
        """Retry the service's 429, 5xx, timeouts and dropped connections with the run's policy."""
        self._service.retry = policy

    def _read(self, reply: dict[str, Any]) -> dict[str, int]:
        found = _severities(self._service.where, reply)
        missing = [c for c in self.options.categories if c not in found]
        if missing:
            raise LLMServerError(f"{self._service.where}: the reply has no severity for {', '.join(missing)}")
        return found

    async def _violations(self, text: str) -> list[tuple[str, int, int]]:
        opts = self.options
        body = {"categories": list(opts.categories)}
        replies = await asyncio.gather(*(self._service.post({"text": c, **body}, self._read) for c in chunks(text)))
        worst: dict[str, int] = {}
        for severities in replies:
            for category, severity in severities.items():
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
