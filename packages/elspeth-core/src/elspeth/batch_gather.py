"""A :class:`~elspeth.batching.BatchingClient` used as an ordinary LLM client: each call joins a provider batch.

:class:`BatchedClient` stands where the client stands in an :class:`~elspeth.LLMPipeline`, so that a
batch run keeps everything a live run does: the request middleware runs before the request is
batched (prompt shields and the like still apply), a cache hit is answered by the cache and never
submitted, every answer is priced by the cost tracker (at the batch rates: the request carries
``metadata["batch_id"]``), ``after_response`` middleware, validation and the run store see each
answer as they would a live one. ``generate`` puts the request on a list and waits; once no new
request has arrived for ``gather_s`` seconds (or ``max_gather`` are waiting), the list goes to
:func:`~elspeth.batch_run.run_batches` and each caller gets its item's answer. The pipeline gives
such an attempt no timeout and no rate limit (``defers``).

An item that failed or expired is, with ``retry_live``, raised as retryable (the pipeline's next
attempt goes to the live API, ``generate`` of the wrapped client); without it, as not retryable,
naming the batch, so the row is reported failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from elspeth.batch_run import BatchJournal, OnStatus, run_batches
from elspeth.batching import BATCH_ID_KEY, BatchingClient, BatchItem, BatchResult
from elspeth.datatypes import LLMRequest, LLMResponse
from elspeth.llm_errors import LLMError, LLMRequestRejected, LLMServerError

__all__ = ["BatchedClient", "item_id"]

_ID_METADATA = ("row_id", "llm", "experiment", "criterion", "group", "validation_attempt")


def item_id(request: LLMRequest) -> str:
    """A custom id that is the same for the same row's same request in a resumed run (48 hex characters)."""
    meta = {key: request.metadata.get(key) for key in _ID_METADATA}
    text = json.dumps([request.system, request.user, request.params, meta], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:48]


class BatchedClient:
    """Gathers ``generate`` calls into provider batches (see the module docs).

    Args:
        client: the provider's client; its ``generate`` answers live retries.
        journal: where the batches are kept (the run store's, so a killed run resumes by polling).
        run_tag: the run's id, the prefix of every batch tag.
        gather_s: seconds without a new request before the gathered ones are sent.
        max_gather: send at once when this many are waiting.
        poll_interval: seconds between polls.
        retry_live: retry failed and expired items through the live API.
        on_status: called with every round of batch statuses (the progress display).

    """

    def __init__(
        self,
        client: BatchingClient,
        journal: BatchJournal,
        *,
        run_tag: str,
        gather_s: float = 0.5,
        max_gather: int = 50_000,
        poll_interval: float = 30.0,
        retry_live: bool = False,
        on_status: OnStatus | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.run_tag = run_tag
        self.gather_s = gather_s
        self.max_gather = max_gather
        self.poll_interval = poll_interval
        self.retry_live = retry_live
        self.on_status = on_status
        for name in ("options", "endpoint", "key_id", "name"):  # the cache key and request metadata read these
            if hasattr(client, name):
                setattr(self, name, getattr(client, name))
        self._waiting: dict[str, tuple[BatchItem, asyncio.Future[BatchResult]]] = {}
        self._arrived = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.sent = 0  # items handed to run_batches (resumed ones included)

    def defers(self, request: LLMRequest) -> bool:
        """Whether this attempt waits on a batch (the first; later ones go live when ``retry_live``)."""
        return not (self.retry_live and int(request.metadata.get("attempt", 1)) > 1)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Join the next batch and return this request's answer, or raise why it has none."""
        if not self.defers(request):
            return await self.client.generate(request)  # type: ignore[attr-defined,no-any-return]
        custom_id = item_id(request)
        waiting = self._waiting.get(custom_id)
        if waiting is None:
            future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
            self._waiting[custom_id] = waiting = (BatchItem(custom_id, request), future)
            self._arrived.set()
            if self._sender is None or self._sender.done():
                self._sender = asyncio.create_task(self._send_when_gathered())
        result = await asyncio.shield(waiting[1])
        return self._answer(request, result)

    def _answer(self, request: LLMRequest, result: BatchResult) -> LLMResponse:
        batch_id = self._batch_of(result.custom_id)
        request.metadata[BATCH_ID_KEY] = batch_id
        if result.response is not None:
            return result.response
        where = f"batch {batch_id}, item {result.custom_id}"
        if result.expired:
            if self.retry_live:
                raise LLMServerError(f"{where}: expired before the provider answered it; retried live")
            raise LLMRequestRejected(f"{where}: expired before the provider answered it (set retry_live to retry)")
        error = result.error if result.error is not None else LLMServerError(f"{where}: no answer")
        if self.retry_live or not error.retryable:
            raise error
        raise LLMRequestRejected(f"{where}: {error} (set retry_live to retry it live)", status=error.status)

    def _batch_of(self, custom_id: str) -> str:
        for entry in self.journal.entries():
            if custom_id in entry.custom_ids:
                return str(entry.batch_id)
        return ""

    async def _send_when_gathered(self) -> None:
        while True:
            self._arrived.clear()
            if len(self._waiting) < self.max_gather:
                try:
                    await asyncio.wait_for(self._arrived.wait(), self.gather_s)
                    continue  # another arrived: keep gathering
                except TimeoutError:
                    pass
            taken, self._waiting = self._waiting, {}
            if not taken:
                return
            await self._send([item for item, _ in taken.values()], {cid: fut for cid, (_, fut) in taken.items()})

    async def _send(self, items: Sequence[BatchItem], futures: dict[str, asyncio.Future[BatchResult]]) -> None:
        def deliver(result: BatchResult) -> None:
            future = futures.get(result.custom_id)
            if future is not None and not future.done():
                future.set_result(result)

        self.sent += len(items)
        try:
            await self._run(items, deliver)
        except BaseException as exc:  # the whole batch failed: every caller learns why
            failure = exc if isinstance(exc, LLMError | ValueError) else LLMServerError(f"batch run failed: {exc!r}")
            for future in futures.values():
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
        for custom_id, future in futures.items():
            if not future.done():  # collected in an earlier process: read the provider's results again
                future.set_result(BatchResult(custom_id, expired=True))

    async def _run(self, items: Sequence[BatchItem], deliver: Any) -> None:
        wanted = {item.custom_id for item in items}
        again = [e for e in self.journal.entries() if e.collected and wanted & set(e.custom_ids)]
        for entry in again:  # answered before a crash, not yet committed: the provider keeps the results
            async for result in self.client.results(str(entry.batch_id)):
                deliver(result)
        await run_batches(
            self.client,
            items,
            self.journal,
            run_tag=self.run_tag,
            on_result=deliver,
            on_status=self.on_status,
            poll_interval=self.poll_interval,
        )
