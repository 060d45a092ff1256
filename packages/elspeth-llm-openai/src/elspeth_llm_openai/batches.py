"""The OpenAI Batch API (and Azure OpenAI's global batch) as :class:`elspeth.BatchingClient` members.

One JSONL file of chat-completion lines is uploaded through the Files API, a batch is created over
it through the Batches API, and the output and error files are read back, all through the ``openai``
SDK (``files.create``, ``batches.create``, ``batches.retrieve``, ``batches.list``, ``batches.cancel``,
``files.content``). Each line's body is the one ``generate`` would send live (``chat_body``), so a
batch answer and a live answer of the same request are the same request to the provider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from elspeth import (
    BatchItem,
    BatchLimits,
    BatchResult,
    BatchStatus,
    LLMError,
    LLMRequest,
    LLMServerError,
    error_for_status,
)

__all__ = ["OpenAIBatches"]

TAG_KEY = "elspeth_tag"  # the batch metadata field that holds the run's tag, for find()
_TERMINAL = {"completed", "expired", "cancelled", "failed"}


class OpenAIBatches:
    """Mixin for an ``openai``-SDK client: needs ``_base``, ``options.extra_body``, ``_where`` and ``_batch_sdk()``.

    ``batch_url`` is the ``url`` of every line: ``/v1/chat/completions`` for OpenAI,
    ``/chat/completions`` for Azure (whose lines name the deployment as ``model``).
    """

    batch_url = "/v1/chat/completions"
    _base: dict[str, Any]
    _where: str
    options: Any

    @property
    def batch_limits(self) -> BatchLimits:
        """OpenAI's ceiling: 50,000 lines and 200 MB of JSONL per batch."""
        return BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)

    async def _batch_sdk(self) -> Any:
        raise NotImplementedError  # each client gives its SDK object

    def _line(self, item: BatchItem) -> bytes:
        from elspeth_llm_openai.client import check_response_format
        from elspeth_llm_openai.sdk import chat_body

        request = item.request
        if "response_format" in request.params:
            params = {**request.params, "response_format": check_response_format(request.params["response_format"])}
            request = LLMRequest(request.system, request.user, params, request.metadata)
        body = chat_body(self._base, request, self.options.extra_body)
        body.pop("timeout", None)  # a per-call timeout is the HTTP request's, never part of a batch line
        line = {"custom_id": item.custom_id, "method": "POST", "url": self.batch_url, "body": body}
        return (json.dumps(line, ensure_ascii=False) + "\n").encode()

    def item_bytes(self, item: BatchItem) -> int:
        """The length of the item's JSONL line, which is what OpenAI counts toward 200 MB."""
        return len(self._line(item))

    async def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        from elspeth_llm_openai.sdk import translate_error

        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            translated = translate_error(exc, f"{self._where} ({what})")
            if translated is None:
                raise
            raise translated from exc

    async def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        """Upload the lines as one file and create a batch over it, with ``tag`` in its metadata."""
        sdk = await self._batch_sdk()
        payload = b"".join(self._line(item) for item in items)
        file = await self._call("file upload", sdk.files.create, file=(f"{tag}.jsonl", payload), purpose="batch")
        batch = await self._call(
            "batch create",
            sdk.batches.create,
            input_file_id=file.id,
            endpoint=self.batch_url,
            completion_window="24h",
            metadata={TAG_KEY: tag},
        )
        return str(batch.id)

    async def find(self, tag: str) -> str | None:
        """The newest batch whose metadata holds ``tag`` (among the account's most recent 1,000)."""
        sdk = await self._batch_sdk()
        page = await self._call("batch list", sdk.batches.list, limit=100)
        seen = 0
        async for batch in page:
            if (batch.metadata or {}).get(TAG_KEY) == tag:
                return str(batch.id)
            seen += 1
            if seen >= 1000:
                break
        return None

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's status and request counts (``expired`` is what an expired batch left unanswered)."""
        sdk = await self._batch_sdk()
        batch = await self._call("batch retrieve", sdk.batches.retrieve, batch_id)
        counts = batch.request_counts
        total = counts.total if counts is not None else 0
        done = counts.completed if counts is not None else 0
        failed = counts.failed if counts is not None else 0
        terminal = batch.status in _TERMINAL
        rest = max(0, total - done - failed)
        errors = getattr(batch, "errors", None)
        message = "; ".join(str(e.message) for e in (errors.data or [])) if errors is not None else ""
        return BatchStatus(
            batch_id=batch_id,
            state=str(batch.status),
            terminal=terminal,
            submitted=total,
            in_progress=0 if terminal else rest,
            done=done,
            failed=failed,
            expired=rest if batch.status == "expired" else 0,
            message=message,
        )

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        """Every line of the output and error files as a :class:`~elspeth.BatchResult`."""
        sdk = await self._batch_sdk()
        batch = await self._call("batch retrieve", sdk.batches.retrieve, batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._call("file download", sdk.files.content, file_id)
            for raw in content.text.splitlines():
                if raw.strip():
                    yield self._result(json.loads(raw))

    def _result(self, line: dict[str, Any]) -> BatchResult:
        from openai.types.chat import ChatCompletion

        from elspeth_llm_openai.sdk import to_response

        custom_id = str(line.get("custom_id"))
        error, response = line.get("error"), line.get("response")
        if error and error.get("code") == "batch_expired":
            return BatchResult(custom_id, expired=True)
        if error or not isinstance(response, dict):
            message = (error or {}).get("message", "no response")
            return BatchResult(custom_id, error=LLMServerError(f"{self._where} (batch item {custom_id}): {message}"))
        status, body = int(response.get("status_code") or 0), response.get("body") or {}
        if status != 200:
            found = body.get("error")
            detail: dict[str, Any] = found if isinstance(found, dict) else {}
            text = f"{self._where} (batch item {custom_id}): HTTP {status}: {detail.get('message', '')}"
            refused = "content_filter" in str(detail.get("code") or "")
            return BatchResult(custom_id, error=error_for_status(text, status, {}, refused=refused))
        try:
            return BatchResult(custom_id, response=to_response(ChatCompletion.model_validate(body), self._where))
        except Exception as exc:  # a refusal or an answer without choices is that item's failure, not the batch's
            if isinstance(exc, LLMError):
                return BatchResult(custom_id, error=exc)
            return BatchResult(custom_id, error=LLMServerError(f"{self._where} (batch item {custom_id}): {exc}"))

    async def cancel(self, batch_id: str) -> None:
        """Ask OpenAI to cancel the batch (it moves to ``cancelling``, then ``cancelled``)."""
        sdk = await self._batch_sdk()
        await self._call("batch cancel", sdk.batches.cancel, batch_id)
