"""What an LLM client offers to take part in a provider's batch API (half price, answers within hours).

A run with ``batch_api: true`` does not call ``generate`` once per row. It renders every row's
request, runs the request middleware over it, leaves out what the response cache already holds,
splits the rest by the client's :class:`BatchLimits`, and for each part calls :meth:`BatchingClient.submit`.
It then calls :meth:`~BatchingClient.poll` until the status is terminal, and reads
:meth:`~BatchingClient.results`. Every batch id is written to the run store before the run goes on,
so a run killed at any point resumes by polling the batches it submitted and never submits them again.

**Implementing it for a provider** (OpenAI Batch, Azure global batch, Anthropic Message Batches,
Gemini batch mode): the client class that already has ``generate`` gains the members of
:class:`BatchingClient`; :func:`supports_batching` is how the run tells. The rules:

- ``batch_limits`` is the provider's own ceiling per batch: requests and bytes of the encoded
  payload (OpenAI: 50,000 lines and 200 MB of JSONL; Anthropic: 100,000 requests and 256 MB). The
  run never hands ``submit`` more; :meth:`~BatchingClient.item_bytes` says what one item costs in
  bytes as the provider counts them (the length of its JSONL line, or of its JSON request).
- ``submit(items, tag)`` sends one batch and returns the provider's batch id. Each item's
  ``custom_id`` must come back unchanged with its result (OpenAI ``custom_id``, Anthropic
  ``custom_id``, Gemini: the request's ``key`` / metadata). It encodes each ``item.request`` exactly
  as ``generate`` would send it live (same model, system prompt, parameters, ``request.params``
  overriding the client's options). ``tag`` is a unique string the run has recorded before the
  call: store it with the batch where the provider keeps such things (OpenAI/Azure ``metadata``,
  Gemini ``display_name``) so that :meth:`~BatchingClient.find` can recover a batch whose id was lost
  because the process died between the provider accepting it and the run recording the id.
  Failures raise :mod:`elspeth.llm_errors` exceptions, exactly as ``generate`` does (a 429 is
  :class:`~elspeth.llm_errors.LLMRateLimited` with its ``retry_after``, retried by the run).
- ``find(tag)`` returns the id of a batch submitted with ``tag``, or None if there is none. A
  provider that cannot look a batch up by anything the caller chose returns None: the run then
  only risks a second submission when killed inside that one call.
- ``poll(batch_id)`` returns a :class:`BatchStatus`: the provider's state word as it is
  (``validating``, ``in_progress``, ``ended``, ``JOB_STATE_RUNNING``, ...), the counts it reports,
  and ``terminal``: true once results (or the lack of them) are final: completed, ended, expired,
  cancelled, failed. Counts the provider does not give are left 0 except ``submitted``.
- ``results(batch_id)`` is an async iterator of :class:`BatchResult`, one per submitted item that
  the provider accounts for: the ``response`` built as ``generate`` builds it (content, usage,
  model, ``raw``), or the ``error`` as an :mod:`elspeth.llm_errors` exception (its ``retryable``
  says whether a live retry may succeed), or ``expired=True`` for an item the provider did not get
  to before the batch's window closed. An item missing from the results counts as expired. It is
  called only once :meth:`~BatchingClient.poll` said terminal, and may be called again after a
  crash (the run reads it from the start: the provider keeps results for days).
- ``cancel(batch_id)`` asks the provider to stop a batch (a cancelled run, Ctrl-C twice); it
  returns once the provider has accepted the request, not when the batch has stopped.

Example: the run side, which a provider's tests can drive directly::

    limits = client.batch_limits
    parts = split_batches(items, limits, client.item_bytes)
    batch_id = await client.submit(parts[0], tag="run-42/0")
    while not (status := await client.poll(batch_id)).terminal:
        await asyncio.sleep(poll_interval)
    async for result in client.results(batch_id):
        ...  # result.custom_id, result.response / result.error / result.expired

Cost: a response that came through a batch carries ``request.metadata["batch_id"]``
(:data:`BATCH_ID_KEY`); the ``price_table`` prices such calls at ``batch_input`` / ``batch_output``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from elspeth.datatypes import LLMRequest, LLMResponse
from elspeth.llm_errors import LLMError

__all__ = [
    "BATCH_ID_KEY",
    "BatchItem",
    "BatchLimits",
    "BatchResult",
    "BatchStatus",
    "BatchingClient",
    "split_batches",
    "supports_batching",
]

BATCH_ID_KEY = "batch_id"
"""The request metadata key naming the provider batch a call went through (priced at batch rates)."""


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The most one batch may hold, as the provider counts it.

    Attributes:
        max_requests: items per batch.
        max_bytes: bytes of the encoded payload per batch (see :meth:`BatchingClient.item_bytes`).

    """

    max_requests: int
    max_bytes: int

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1:
            raise ValueError(f"batch limits must be positive, got {self.max_requests} requests, {self.max_bytes} bytes")


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request of a batch.

    Attributes:
        custom_id: the run's key for the item, unique within the batch (at most 64 characters of
            ``[A-Za-z0-9_-]``, which every provider accepts); it comes back with the result.
        request: the request after the middleware chain, encoded as ``generate`` would send it.

    """

    custom_id: str
    request: LLMRequest


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """Where one batch stands.

    Attributes:
        batch_id: the provider's id.
        state: the provider's own word for it (shown to the user as it is).
        terminal: True once nothing will change any more (completed, ended, expired, cancelled, failed).
        submitted: items in the batch.
        in_progress: items not yet answered.
        done: items answered.
        failed: items that failed.
        expired: items the provider did not get to in time.
        message: the provider's reason when the whole batch failed (validation errors, ...), else "".

    """

    batch_id: str
    state: str
    terminal: bool
    submitted: int
    in_progress: int = 0
    done: int = 0
    failed: int = 0
    expired: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one item: exactly one of ``response``, ``error`` or ``expired`` is set.

    Attributes:
        custom_id: the item's :attr:`BatchItem.custom_id`.
        response: the answer, as ``generate`` would have returned it.
        error: why the item failed, as an :mod:`elspeth.llm_errors` exception.
        expired: True when the provider did not answer the item before the batch's window closed.

    """

    custom_id: str
    response: LLMResponse | None = None
    error: LLMError | None = None
    expired: bool = False

    def __post_init__(self) -> None:
        if (self.response is not None) + (self.error is not None) + self.expired != 1:
            raise ValueError(f"batch result {self.custom_id!r} needs exactly one of response, error, expired")


@runtime_checkable
class BatchingClient(Protocol):
    """An LLM client that can also send requests through its provider's batch API (see the module docs)."""

    @property
    def batch_limits(self) -> BatchLimits:
        """The provider's ceiling per batch."""
        ...

    def item_bytes(self, item: BatchItem) -> int:
        """Bytes ``item`` adds to a batch's payload, as the provider counts them toward ``max_bytes``."""
        ...

    async def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """Send one batch (within :attr:`batch_limits`) and return its id; ``tag`` is kept for :meth:`find`."""
        ...

    async def find(self, tag: str) -> str | None:
        """The id of a batch :meth:`submit` sent with ``tag``, or None (also when the provider cannot tell)."""
        ...

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's current status."""
        ...

    def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        """Every item's outcome, once :meth:`poll` said terminal."""
        ...

    async def cancel(self, batch_id: str) -> None:
        """Ask the provider to stop the batch."""
        ...


def supports_batching(client: object) -> bool:
    """Whether ``client`` implements :class:`BatchingClient` (every member present)."""
    return isinstance(client, BatchingClient)


def split_batches(
    items: Iterable[BatchItem], limits: BatchLimits, size: Callable[[BatchItem], int]
) -> list[list[BatchItem]]:
    """``items`` in order, cut into batches that each keep within ``limits`` (count and ``size`` bytes).

    Raises:
        ValueError: one item alone is larger than ``limits.max_bytes`` (named by its custom id).

    """
    batches: list[list[BatchItem]] = []
    current: list[BatchItem] = []
    used = 0
    for item in items:
        nbytes = size(item)
        if nbytes > limits.max_bytes:
            raise ValueError(
                f"batch item {item.custom_id!r} is {nbytes} bytes, over the provider's {limits.max_bytes} per batch"
            )
        if current and (len(current) >= limits.max_requests or used + nbytes > limits.max_bytes):
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += nbytes
    if current:
        batches.append(current)
    return batches
