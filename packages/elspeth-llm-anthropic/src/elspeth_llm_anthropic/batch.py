"""Anthropic Message Batches through ``client.messages.batches``: :class:`~elspeth.BatchingClient`'s SDK side.

Imported only when a run sends through the batch API. Each item is the Messages body ``generate``
would send live (:func:`~elspeth_llm_anthropic.sdk.message_body`), so a batched row and a live row
get the same answer. Item errors come back as Anthropic's error objects; each becomes the
:mod:`elspeth.llm_errors` exception the same error would raise live (a ``rate_limit_error`` or
``overloaded_error`` is retryable, an ``invalid_request_error`` is not); a ``canceled`` item is a
retryable server error (the batch was stopped before it was answered), an ``expired`` one is
:attr:`~elspeth.BatchResult.expired`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic

from elspeth import BatchItem, BatchResult, BatchStatus, LLMError, LLMServerError, error_for_status
from elspeth_llm_anthropic.sdk import _REJECTED_HINT, message_body, to_response, translate_error

__all__ = ["item_line", "poll", "results", "submit"]

_STATUS_OF = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def item_line(options: Any, item: BatchItem) -> dict[str, Any]:
    """One entry of a batch's ``requests``: the item's ``custom_id`` and the Messages body sent live."""
    return {"custom_id": item.custom_id, "params": message_body(options, item.request)}


def item_size(options: Any, item: BatchItem) -> int:
    """Bytes the entry adds to the batch's JSON body (its encoding and a separator)."""
    return len(json.dumps(item_line(options, item)).encode()) + 2


def _translated(exc: Exception, where: str) -> LLMError:
    translated = translate_error(exc, where)
    if translated is None:
        raise exc
    return translated


async def submit(sdk: Any, options: Any, items: Sequence[BatchItem], where: str) -> str:
    """Create one Message Batch and return its id (SDK failures as :mod:`elspeth.llm_errors` exceptions)."""
    try:
        batch = await sdk.messages.batches.create(requests=[item_line(options, i) for i in items])
    except Exception as exc:
        raise _translated(exc, where) from exc
    return str(batch.id)


async def poll(sdk: Any, batch_id: str, where: str) -> BatchStatus:
    """The batch's ``processing_status`` and ``request_counts``; ``ended`` is terminal."""
    try:
        batch = await sdk.messages.batches.retrieve(batch_id)
    except Exception as exc:
        raise _translated(exc, where) from exc
    counts = batch.request_counts
    submitted = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
    return BatchStatus(
        batch_id=batch_id,
        state=str(batch.processing_status),
        terminal=batch.processing_status == "ended",
        submitted=submitted,
        in_progress=counts.processing,
        done=counts.succeeded,
        failed=counts.errored + counts.canceled,
        expired=counts.expired,
    )


def _item_error(error: Any, where: str) -> LLMError:
    inner = getattr(error, "error", None)
    kind = str(getattr(inner, "type", "api_error"))
    message = str(getattr(inner, "message", "") or kind)
    status = _STATUS_OF.get(kind, 500)
    text = f"{where}: batch item failed: HTTP {status} {kind}: {message}"
    refused = status == 400 and "content filtering" in message.lower()
    hint = _REJECTED_HINT.get(status)
    return error_for_status(text, status, {}, refused=refused, overloaded=kind == "overloaded_error", hint=hint)


def _result(line: Any, where: str) -> BatchResult:
    result = line.result
    custom_id = str(line.custom_id)
    if result.type == "succeeded":
        try:
            return BatchResult(custom_id, response=to_response(result.message, where))
        except LLMError as exc:  # a refusal stop is an error, as it is live
            return BatchResult(custom_id, error=exc)
    if result.type == "errored":
        return BatchResult(custom_id, error=_item_error(result.error, where))
    if result.type == "expired":
        return BatchResult(custom_id, expired=True)
    return BatchResult(custom_id, error=LLMServerError(f"{where}: batch item {result.type}: the batch was stopped"))


async def results(sdk: Any, batch_id: str, where: str) -> AsyncIterator[BatchResult]:
    """Every line of the ended batch's results, as :class:`~elspeth.BatchResult` objects."""
    try:
        lines = await sdk.messages.batches.results(batch_id)
    except anthropic.AnthropicError as exc:
        raise _translated(exc, where) from exc
    async for line in lines:
        yield _result(line, where)


async def cancel(sdk: Any, batch_id: str, where: str) -> None:
    """Ask Anthropic to cancel the batch (it answers ``canceling``, and ends the batch later)."""
    try:
        await sdk.messages.batches.cancel(batch_id)
    except Exception as exc:
        raise _translated(exc, where) from exc
