"""``azure_prompt_shield``: detects prompt attacks with Azure AI Content Safety Prompt Shields."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from elspeth import LLMContentRefused, LLMError, LLMRequest, LLMServerError, RetryPolicy
from elspeth_llm_azure._service import MAX_TEXT, Service, ServiceOptions, chunks

__all__ = ["MAX_DOCUMENTS", "PromptShield", "PromptShieldOptions"]

log = logging.getLogger("elspeth.azure_content_safety")
MAX_DOCUMENTS = 5  # documents per request the service takes, together at most MAX_TEXT characters


class PromptShieldOptions(ServiceOptions):
    """Options of ``azure_prompt_shield``."""

    on_attack: Literal["abort", "mask", "log"] = Field(
        "abort", description="abort the call, replace the user prompt with `mask`, or only log"
    )
    mask: str = Field("[PROMPT BLOCKED]", description="what replaces the user prompt when on_attack is mask")
    system_as_document: bool = Field(
        False, description="also send the system prompt as a document (to catch attacks hidden in it)"
    )


def _batches(user: str, documents: list[str]) -> list[tuple[str, list[tuple[int, str]]]]:
    """The requests that screen all of ``user`` and every document within the service's limits.

    The user prompt is cut into overlapping pieces of at most ``MAX_TEXT`` characters, and so is each
    document; document pieces are packed, at most ``MAX_DOCUMENTS`` and ``MAX_TEXT`` characters to a
    request, each tagged with the index of the document it came from. Nothing is left unscreened.
    """
    pieces = [(i, piece) for i, doc in enumerate(documents) for piece in chunks(doc)]
    groups: list[list[tuple[int, str]]] = []
    for index, piece in pieces:
        group = groups[-1] if groups else None
        if group is None or len(group) >= MAX_DOCUMENTS or sum(len(p) for _, p in group) + len(piece) > MAX_TEXT:
            group = []
            groups.append(group)
        group.append((index, piece))
    users = chunks(user)
    count = max(len(users), len(groups))
    return [(users[k] if k < len(users) else "", groups[k] if k < len(groups) else []) for k in range(count)]


def _attacks(where: str, reply: dict[str, Any], sent: int) -> tuple[bool, list[bool]]:
    """``(attack in the user prompt, attack in each document sent)`` from a ``text:shieldPrompt`` reply.

    A reply without ``userPromptAnalysis.attackDetected``, or whose ``documentsAnalysis`` does not hold
    one boolean verdict per document sent, is the service's error: it is never read as "no attack".
    """
    user = reply.get("userPromptAnalysis")
    verdict = user.get("attackDetected") if isinstance(user, dict) else None
    if not isinstance(verdict, bool):
        raise LLMServerError(f"{where}: the reply has no `userPromptAnalysis.attackDetected`: {str(reply)[:120]}")
    docs = reply.get("documentsAnalysis", [] if sent == 0 else None)
    if not isinstance(docs, list) or len(docs) != sent:
        got = len(docs) if isinstance(docs, list) else "none"
        raise LLMServerError(f"{where}: `documentsAnalysis` has {got} verdicts for {sent} documents sent")
    found = []
    for doc in docs:
        attack = doc.get("attackDetected") if isinstance(doc, dict) else None
        if not isinstance(attack, bool):
            raise LLMServerError(f"{where}: a `documentsAnalysis` entry has no `attackDetected`: {doc!r:.120}")
        found.append(attack)
    return verdict, found


class PromptShield:
    """Detects prompt attacks (jailbreaks, indirect injection) with Azure AI Content Safety Prompt Shields.

    Sends the user prompt as ``userPrompt`` and, as ``documents``, any texts a processor put in
    ``request.metadata["documents"]`` (plus the system prompt if asked). A prompt or document over the
    service's 10,000-character limit is screened in overlapping pieces, several requests if need be,
    so an attack late in a long text is still seen. ``abort`` raises
    :class:`~elspeth.llm_errors.LLMContentRefused`, never retried.
    """

    name = "azure_prompt_shield"
    Options = PromptShieldOptions

    def __init__(self, options: PromptShieldOptions) -> None:
        self.options = options
        self._service = Service(self.name, options, "shieldPrompt")
        self.endpoint = self._service.endpoint
        # the URL every prompt is sent to: checked against `allowed_endpoints` before any row
        self.endpoints: tuple[str, ...] = (self._service.url,)

    def use_retry_policy(self, policy: RetryPolicy) -> None:
        """Retry the service's 429, 5xx, timeouts and dropped connections with the run's policy."""
        self._service.retry = policy

    async def _where(self, user: str, documents: list[str]) -> list[str]:
        """Where attacks were found: ``the user prompt`` and ``document N of M``, in that order."""
        batches = _batches(user, documents)

        async def screen(text: str, group: list[tuple[int, str]]) -> tuple[bool, list[bool]]:
            body = {"userPrompt": text, "documents": [piece for _, piece in group]}
            return await self._service.post(body, lambda reply: _attacks(self._service.where, reply, len(group)))

        verdicts = await asyncio.gather(*(screen(text, group) for text, group in batches))
        in_user = any(user_attack for user_attack, _ in verdicts)
        in_docs: set[int] = set()
        for (_, group), (_, doc_attacks) in zip(batches, verdicts, strict=True):
            in_docs.update(index for (index, _), attack in zip(group, doc_attacks, strict=True) if attack)
        where = ["the user prompt"] if in_user else []
        return where + [f"document {i + 1} of {len(documents)}" for i in sorted(in_docs)]

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Ask Prompt Shields about the prompt and documents; act on any attack detected."""
        documents = [str(d) for d in request.metadata.get("documents") or []]
        if self.options.system_as_document and request.system:
            documents.append(request.system)
        try:
            where = await self._where(request.user, documents)
        except LLMError as exc:
            if self.options.on_error == "abort":
                raise
            log.warning("%s: prompt not screened (on_error: skip): %s", self.name, exc)
            request.metadata["prompt_shield"] = "skipped"
            return request
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
