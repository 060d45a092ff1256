"""The LLM test server's Anthropic Message Batches API, as ``client.messages.batches.*`` calls it.

Routes: ``POST /v1/messages/batches`` (``{"requests": [{"custom_id", "params"}]}``), ``GET
/v1/messages/batches/{id}`` (each read counts as a poll, see
:class:`~elspeth_testing._llm_server_batch_jobs.BatchSettings`), ``GET /v1/messages/batches/{id}/results``
(JSONL, one line per item, in the reverse of the submitted order since the API promises no order)
and ``POST /v1/messages/batches/{id}/cancel``. ``processing_status`` goes ``in_progress`` ->
``ended`` (``canceling`` is answered by the cancel call itself); ``request_counts`` count
``processing`` until the batch ends, then ``succeeded`` / ``errored`` / ``canceled`` / ``expired``.
A batch over the settings' ``max_requests`` or ``max_bytes`` is refused with 413, a duplicate or
malformed ``custom_id`` or ``params`` with 400 naming ``requests.N``. Scripts whose ``path`` names
``/v1/messages/batches`` fault the batch calls themselves; faults of the items are drawn as a live
call's (see :mod:`elspeth_testing._llm_server_batch_jobs`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_anthropic import (
    _ERROR_TYPES,
    _anthropic_error,
    _cached_system,
    _check,
    _message,
    to_chat_body,
)
from elspeth_testing._llm_server_anthropic import _text as _block_text
from elspeth_testing._llm_server_batch_jobs import (
    BATCHES,
    Batch,
    BatchItem,
    ItemResult,
    advance,
    batch_fault,
    cancel,
    timestamp,
)
from elspeth_testing._llm_server_http import STATE, _read
from elspeth_testing._llm_server_state import RecordedRequest

__all__ = ["batch_cancel_route", "batch_create_route", "batch_get_route", "batch_results_route"]

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DAY_S = 24 * 3600


def _refused(rec: RecordedRequest, status: int, message: str) -> web.Response:
    rec.status, rec.outcome = status, str(status)
    return _anthropic_error(status, message)


def _view(request: web.Request, batch: Batch) -> dict[str, Any]:
    counts = batch.counts()
    status = "ended" if batch.ended else ("canceling" if batch.cancel_requested_at is not None else "in_progress")
    results = f"{request.url.origin()}/v1/messages/batches/{batch.id}/results" if batch.ended else None
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {k: counts.get(k, 0) for k in ("processing", "succeeded", "errored", "canceled", "expired")},
        "created_at": timestamp(batch.created_at),
        "expires_at": timestamp(batch.created_at + _DAY_S),
        "ended_at": timestamp(batch.ended_at),
        "cancel_initiated_at": timestamp(batch.cancel_requested_at),
        "archived_at": None,
        "results_url": results,
    }


def _items(body: Any) -> list[BatchItem] | str:
    """The batch's items, or why the body is refused (naming ``requests.N``)."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: Field required (a non-empty list of {custom_id, params})"
    items: list[BatchItem] = []
    seen: set[str] = set()
    for n, entry in enumerate(requests):
        custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
        params = entry.get("params") if isinstance(entry, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return f"requests.{n}.custom_id: must be 1-64 characters of letters, digits, `-` and `_`"
        if custom_id in seen:
            return f"requests.{n}.custom_id: {custom_id!r} is used more than once in this batch"
        if not isinstance(params, dict) or not params.get("model") or not isinstance(params.get("messages"), list):
            return f"requests.{n}.params: `model`, `messages` and `max_tokens` are required"
        if not isinstance(params.get("max_tokens"), int) or params.get("stream"):
            return f"requests.{n}.params.max_tokens: Field required (and batch requests cannot stream)"
        seen.add(custom_id)
        items.append(BatchItem(custom_id, to_chat_body(params), str(params["model"]), params))
    return items


async def batch_create_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Accept a Message Batch (``POST /v1/messages/batches``)."""
    store = request.app[BATCHES]
    refused = _check(request, rec) or await batch_fault(request, rec, _anthropic_error)
    if refused is not None:
        return refused
    raw_size = len(await request.read())
    body = await _read(request, rec)
    items = _items(body)
    if isinstance(items, str):
        return _refused(rec, 400, items)
    settings = store.settings
    if len(items) > settings.max_requests or raw_size > settings.max_bytes:
        limit = f"at most {settings.max_requests} requests and {settings.max_bytes} bytes"
        return _refused(rec, 413, f"batch of {len(items)} requests, {raw_size} bytes: {limit} (test server)")
    batch = store.add(Batch(store.new_id("msgbatch_", *(i.custom_id for i in items)), "anthropic", request.path, items))
    rec.status, rec.outcome = 200, "ok"
    return web.json_response(_view(request, batch))


async def _found(request: web.Request, rec: RecordedRequest) -> Batch | web.Response:
    """The batch the path names, or the refusal: a wrong key, a scripted fault, no such batch."""
    refused = _check(request, rec) or await batch_fault(request, rec, _anthropic_error)
    if refused is not None:
        return refused
    batch = request.app[BATCHES].get(request.match_info["batch_id"])
    if batch is None or batch.provider != "anthropic":
        return _refused(rec, 404, f"no message batch {request.match_info['batch_id']!r} (test server)")
    return batch


async def batch_get_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """A batch's status (``GET /v1/messages/batches/{id}``); ends it once it has been polled enough."""
    batch = await _found(request, rec)
    if isinstance(batch, web.Response):
        return batch
    advance(request.app[STATE], request.app[BATCHES], batch)
    rec.status, rec.outcome = 200, "ok"
    return web.json_response(_view(request, batch))


async def batch_cancel_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Cancel a batch (``POST /v1/messages/batches/{id}/cancel``): ``canceling`` now, ``ended`` at the next read."""
    batch = await _found(request, rec)
    if isinstance(batch, web.Response):
        return batch
    was_ended = batch.ended
    cancel(request.app[STATE], request.app[BATCHES], batch)
    view = _view(request, batch)
    if not was_ended:
        view["processing_status"] = "canceling"
    rec.status, rec.outcome = 200, "ok"
    return web.json_response(view)


def _line(item: BatchItem, result: ItemResult) -> dict[str, Any]:
    if result.outcome == "succeeded" and result.reply is not None:
        cache = (0, 0)
        if _cached_system(item.body):
            system_tokens = max(1, len(_block_text(item.body.get("system"))) // 4)
            cache = (system_tokens, 0) if result.seen_system else (0, system_tokens)
        return {"type": "succeeded", "message": _message(result.reply, item.model, cache)}
    if result.outcome == "errored":
        kind = "invalid_request_error" if result.refused else _ERROR_TYPES.get(result.status or 500, "api_error")
        error = {"type": "error", "error": {"type": kind, "message": result.message}}
        return {"type": "errored", "error": error}
    return {"type": result.outcome}


async def batch_results_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """The results of an ended batch as JSONL (``GET /v1/messages/batches/{id}/results``)."""
    batch = await _found(request, rec)
    if isinstance(batch, web.Response):
        return batch
    if batch.results is None:
        return _refused(rec, 400, f"message batch {batch.id} has not ended yet: its results are not ready")
    pairs = list(zip(batch.items, batch.results, strict=True))
    lines = [json.dumps({"custom_id": i.custom_id, "result": _line(i, r)}) for i, r in reversed(pairs)]
    rec.status, rec.outcome = 200, "ok"
    return web.Response(body=("\n".join(lines) + "\n").encode(), content_type="application/binary")
