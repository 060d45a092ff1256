"""The LLM test server's Anthropic and Gemini batch jobs, whichever of the two wire APIs submitted them.

A batch holds its items as chat-completions-equivalent bodies, so an item gets the same reply,
usage and faults as the same prompt sent live: when a batch ends, each item draws its fault
through :meth:`ServerState.choose` (scripts with a ``match`` and the config's fault rates apply
to batch items too) and is answered by :meth:`ServerState.completion`. A ``hang`` leaves the item
unanswered (``expired``); a status fault, a ``drop``, ``malformed`` or ``empty`` makes it ``errored``
with that status (500 for the three that have none); ``content_filter`` or the refuse marker makes
it a refusal. A batch stays in progress until it has been polled ``polls`` times and ``seconds``
have passed since it was created (:class:`BatchSettings`), so a test decides how long it runs.

The provider modules (:mod:`elspeth_testing._llm_server_anthropic_batches`,
:mod:`elspeth_testing._llm_server_gemini_batches`) own the wire shapes; this module owns the facts.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from elspeth_testing._llm_server_http import STATE, ErrorBuilder, _faulted, reshaped
from elspeth_testing._llm_server_state import CHAT, RecordedRequest, last_user_message

if TYPE_CHECKING:
    from elspeth_testing._llm_server_state import ServerState

__all__ = [
    "BATCHES",
    "batch_fault",
    "timestamp",
    "Batch",
    "BatchItem",
    "BatchSettings",
    "BatchStore",
    "ItemResult",
    "advance",
    "cancel",
]

SUCCEEDED, ERRORED, EXPIRED, CANCELED = "succeeded", "errored", "expired", "canceled"


class BatchSettings(BaseModel):
    """How the server's batch jobs behave; changed with ``LLMTestServer.configure_batches``."""

    model_config = ConfigDict(extra="forbid")

    polls: int = Field(1, ge=0, description="status reads a batch answers `in progress` before it ends")
    seconds: float = Field(0.0, ge=0, description="and the least time from its creation to its end")
    max_requests: int = Field(100_000, ge=1, description="most items one batch may hold (Anthropic's limit)")
    max_bytes: int = Field(256 * 1024 * 1024, ge=1, description="largest batch body, in bytes (Anthropic's 256 MB)")


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: its id, its chat-equivalent body, its model and the provider's own body."""

    custom_id: str
    chat: dict[str, Any]
    model: str
    body: dict[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """One item's fate: ``succeeded`` (``reply``, a chat completion), ``errored``, ``expired`` or ``canceled``.

    ``seen_system`` says whether the item's system prompt had been seen before it was answered
    (prompt caching); ``refused`` marks an errored item refused for its content.
    """

    custom_id: str
    outcome: str
    reply: dict[str, Any] | None = None
    status: int | None = None
    message: str = ""
    refused: bool = False
    seen_system: bool = False


@dataclass
class Batch:
    """A submitted batch; ``results`` is None while it is in progress."""

    id: str
    provider: str
    path: str
    items: list[BatchItem]
    extra: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)
    created_at: float = field(default_factory=time.time)
    polls: int = 0
    cancel_requested_at: float | None = None
    ended_at: float | None = None
    results: list[ItemResult] | None = None

    @property
    def ended(self) -> bool:
        """Whether processing has ended (every item succeeded, errored, expired or was canceled)."""
        return self.results is not None

    def counts(self) -> Counter[str]:
        """Items per outcome, plus ``processing`` for those not ended yet (all of them until the batch ends)."""
        if self.results is None:
            return Counter({"processing": len(self.items)})
        return Counter(r.outcome for r in self.results)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for tests and the ``/_elspeth/batches`` control route."""
        return {
            "id": self.id,
            "provider": self.provider,
            "items": [i.custom_id for i in self.items],
            "polls": self.polls,
            "ended": self.ended,
            "canceled": self.cancel_requested_at is not None,
            "counts": dict(self.counts()),
        }


class BatchStore:
    """Every batch and uploaded file the server holds, and the settings batches follow."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings = BatchSettings()
        self.batches: dict[str, Batch] = {}
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, tuple[dict[str, Any], bytearray]] = {}
        self.answered: Counter[str] = Counter()
        self.issued = 0

    def configure(self, **changes: Any) -> None:
        """Change settings (validated); others keep their values."""
        with self.lock:
            self.settings = BatchSettings.model_validate({**self.settings.model_dump(), **changes})

    def new_id(self, prefix: str, *parts: object) -> str:
        """A fresh id: ``prefix``, a sequence number and a digest of ``parts`` (never reused in a run)."""
        with self.lock:
            self.issued += 1
            sequence = self.issued
        digest = hashlib.sha256(json.dumps([sequence, *map(str, parts)]).encode()).hexdigest()[:16]
        return f"{prefix}{sequence:04d}{digest}"

    def add(self, batch: Batch) -> Batch:
        """Keep a new batch."""
        with self.lock:
            self.batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> Batch | None:
        """The batch with this id, if there is one."""
        with self.lock:
            return self.batches.get(batch_id)

    def summaries(self) -> list[dict[str, Any]]:
        """Every batch, oldest first, as :meth:`Batch.summary` shows it."""
        with self.lock:
            return [b.summary() for b in self.batches.values()]

    def clear(self) -> None:
        """Forget every batch, file and answer count (the settings stay)."""
        with self.lock:
            self.batches.clear()
            self.files.clear()
            self.uploads.clear()
            self.answered.clear()


BATCHES: web.AppKey[BatchStore] = web.AppKey("batches", BatchStore)


def timestamp(t: float | None) -> str | None:
    """``t`` (seconds since the epoch) as the RFC 3339 UTC time both providers write, or None."""
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


async def batch_fault(request: web.Request, rec: RecordedRequest, build: ErrorBuilder) -> web.Response | None:
    """A scripted fault of a batch call itself (scripts with a ``path``), built in the provider's shape."""
    state = request.app[STATE]
    fault, _ = state.choose("batch", request.path, "", f"batch:{request.method}:{request.path}")
    answer = await _faulted(request, rec, fault, state)
    return None if answer is None else reshaped(answer, build)


def _answer(state: ServerState, batch: Batch, item: BatchItem) -> ItemResult:
    prompt = last_user_message(item.chat)
    fault, _ = state.choose(CHAT, batch.path, prompt, json.dumps(item.chat["messages"], sort_keys=True))
    cfg = state.config
    if fault.kind == "hang":
        return ItemResult(item.custom_id, EXPIRED, message="the request expired before it was processed (test server)")
    if fault.kind == "content_filter" or (cfg.refuse_marker and cfg.refuse_marker in prompt):
        message = "Output blocked by content filtering policy (test server)."
        return ItemResult(item.custom_id, ERRORED, status=400, message=message, refused=True)
    status = fault.status if fault.status is not None else (500 if fault.kind != "ok" else None)
    if status is not None:
        return ItemResult(item.custom_id, ERRORED, status=status, message=f"Injected {status} (test server).")
    system = "".join(str(m.get("content")) for m in item.chat["messages"] if m.get("role") == "system")
    seen = system in state.seen_systems
    reply = state.completion(item.chat, item.model)
    return ItemResult(item.custom_id, SUCCEEDED, reply=reply, seen_system=seen)


def _end(state: ServerState, store: BatchStore, batch: Batch, canceled: bool) -> None:
    if canceled:
        results = [ItemResult(i.custom_id, CANCELED, message="the batch was canceled") for i in batch.items]
    else:
        results = [_answer(state, batch, item) for item in batch.items]
    with store.lock:
        if batch.results is None:
            batch.results, batch.ended_at = results, time.time()
            store.answered.update(
                last_user_message(i.chat) for i, r in zip(batch.items, results, strict=True) if r.outcome == SUCCEEDED
            )


def advance(state: ServerState, store: BatchStore, batch: Batch) -> Batch:
    """Count one status read of ``batch`` and end it once the settings allow (answering every item)."""
    with store.lock:
        batch.polls += 1
        settings = store.settings
        due = batch.polls > settings.polls and time.monotonic() - batch.created >= settings.seconds
    if due and not batch.ended:
        _end(state, store, batch, canceled=batch.cancel_requested_at is not None)
    return batch


def cancel(state: ServerState, store: BatchStore, batch: Batch) -> Batch:
    """Ask for ``batch`` to stop: its items not answered yet are ``canceled`` (at once, on this server)."""
    with store.lock:
        if batch.cancel_requested_at is None:
            batch.cancel_requested_at = time.time()
    if not batch.ended:
        _end(state, store, batch, canceled=True)
    return batch
