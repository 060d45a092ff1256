"""The LLM test server's Gemini batch mode (the Gemini API's), as google-genai's ``client.batches.*`` calls it.

Routes: ``POST /{version}/models/{model}:batchGenerateContent`` (``batches.create``: inlined
``requests`` or an uploaded ``fileName``), ``GET /{version}/batches/{id}`` (``batches.get``; each
read counts as a poll), ``GET /{version}/batches`` (``batches.list``, newest first) and
``POST /{version}/batches/{id}:cancel``. They answer a long-running
operation whose ``metadata`` is the ``GenerateContentBatch``: ``state`` goes
``BATCH_STATE_PENDING`` (at creation) -> ``BATCH_STATE_RUNNING`` -> ``BATCH_STATE_SUCCEEDED``, or
``BATCH_STATE_EXPIRED`` when any item expired, ``BATCH_STATE_CANCELLED`` after a cancel,
``BATCH_STATE_FAILED`` when an input file line is not a request; ``batchStats`` counts the items.
Once it ends, ``output`` holds ``inlinedResponses`` (in the order submitted, each echoing its
``metadata``) or a ``responsesFile`` to download, whose lines (``{"key", "response"}`` or ``{"key",
"error"}``) come in the reverse of the input order. An errored item carries Google's ``error``
object; an expired one ``DEADLINE_EXCEEDED`` (this server's reading: the real API gives no item
of an expired job); a refused one a response whose ``promptFeedback`` blocks it, as live.
Vertex AI's ``batchPredictionJobs`` (Cloud Storage or BigQuery input) are not served.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

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
from elspeth_testing._llm_server_gemini import _STATUSES, _check, _reply, generate_route, google_error, to_chat_body
from elspeth_testing._llm_server_gemini_files import file_name
from elspeth_testing._llm_server_http import STATE, _read
from elspeth_testing._llm_server_state import RecordedRequest, tokens

__all__ = ["batch_call_route", "batch_get_route", "batch_list_route", "models_route"]

_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"


def _refused(rec: RecordedRequest, status: int, message: str) -> web.Response:
    rec.status, rec.outcome = status, str(status)
    return google_error(status, message)


def _state_of(batch: Batch) -> str:
    if batch.extra.get("failed"):
        return "BATCH_STATE_FAILED" if batch.ended else "BATCH_STATE_RUNNING"
    if not batch.ended:
        return "BATCH_STATE_PENDING" if batch.polls == 0 else "BATCH_STATE_RUNNING"
    counts = batch.counts()
    if counts.get("canceled"):
        return "BATCH_STATE_CANCELLED"
    return "BATCH_STATE_EXPIRED" if counts.get("expired") else "BATCH_STATE_SUCCEEDED"


def _response(item: BatchItem, result: ItemResult) -> dict[str, Any]:
    """One item's ``response`` or ``error``, as an inlined response or a result-file line carries it."""
    if result.outcome == "succeeded" and result.reply is not None:
        return {"response": _reply(result.reply, item.model)}
    if result.refused:
        prompt_tokens = sum(tokens(str(m["content"])) + 4 for m in item.chat["messages"]) + 3
        feedback = {"blockReason": "SAFETY"}
        usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        return {"response": {"promptFeedback": feedback, "usageMetadata": usage}}
    status = {"expired": 504, "canceled": 499}.get(result.outcome, result.status or 500)
    code = {499: "CANCELLED"}.get(status, _STATUSES.get(status, "UNKNOWN"))
    return {"error": {"code": status, "message": result.message, "status": code}}


def _output(batch: Batch, store: Any) -> dict[str, Any] | None:
    if batch.results is None or batch.counts().get("canceled") or batch.extra.get("failed"):
        return None
    pairs = list(zip(batch.items, batch.results, strict=True))
    if batch.extra.get("file"):
        name = f"batch-{batch.id}"
        if name not in store.files:
            lines = [json.dumps({"key": i.custom_id, **_response(i, r)}) for i, r in reversed(pairs)]
            store.files[name] = ("\n".join(lines) + "\n").encode()
        return {"responsesFile": f"files/{name}"}
    inlined = [{**_response(i, r), "metadata": i.body.get("metadata") or {}} for i, r in pairs]
    return {"inlinedResponses": {"inlinedResponses": inlined}}


def _view(batch: Batch, store: Any) -> dict[str, Any]:
    counts = batch.counts()
    done = sum(counts.values()) - counts.get("processing", 0)
    stats = {
        "requestCount": str(len(batch.items)),
        "successfulRequestCount": str(counts.get("succeeded", 0)),
        "failedRequestCount": str(done - counts.get("succeeded", 0)),
        "pendingRequestCount": str(counts.get("processing", 0)),
    }
    metadata: dict[str, Any] = {
        "@type": _BATCH_TYPE,
        "name": f"batches/{batch.id}",
        "model": batch.extra["model"],
        "displayName": batch.extra.get("display_name") or batch.id,
        "state": _state_of(batch),
        "createTime": timestamp(batch.created_at),
        "updateTime": timestamp(batch.ended_at or batch.created_at),
        "batchStats": stats,
    }
    if batch.ended:
        metadata["endTime"] = timestamp(batch.ended_at)
    output = _output(batch, store)
    if output is not None:
        metadata["output"] = output
    view: dict[str, Any] = {"name": f"batches/{batch.id}", "metadata": metadata, "done": batch.ended}
    if batch.extra.get("failed") and batch.ended:
        view["error"] = {"code": 400, "message": batch.extra["failed"], "status": "INVALID_ARGUMENT"}
    elif batch.ended:
        view["response"] = {**metadata, "@type": _OUTPUT_TYPE}
    return view


def _item(entry: Any, where: str, model: str, key: str) -> BatchItem | str:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("contents"), list) or not request["contents"]:
        return f"{where}.request.contents: contents is not specified"
    item_model = str(request.get("model") or model).removeprefix("models/")
    return BatchItem(key, to_chat_body(request, item_model), item_model, entry)


def _inlined(requests: Any, model: str) -> list[BatchItem] | str:
    if not isinstance(requests, list) or not requests:
        return "batch.inputConfig.requests.requests: at least one request is required"
    items: list[BatchItem] = []
    for n, entry in enumerate(requests):
        metadata = entry.get("metadata") if isinstance(entry, dict) else None
        key = metadata.get("key") if isinstance(metadata, dict) else None
        item = _item(entry, f"batch.inputConfig.requests.requests[{n}]", model, str(key) if key else str(n))
        if isinstance(item, str):
            return item
        items.append(item)
    return items


def _from_file(data: bytes, model: str) -> tuple[list[BatchItem], str | None]:
    """The items of a JSONL input file, and why the job fails (a line that is not a request), if it does."""
    items: list[BatchItem] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return [], f"input file line {number}: not JSON"
        key = entry.get("key") if isinstance(entry, dict) else None
        item = _item(entry, f"input file line {number}", model, str(key) if key else str(number - 1))
        if isinstance(item, str):
            return [], item
        items.append(item)
    return items, None


async def _create(request: web.Request, rec: RecordedRequest, model: str) -> web.Response:
    store = request.app[BATCHES]
    raw_size = len(await request.read())
    body = await _read(request, rec)
    batch_body: dict[str, Any] = body["batch"] if isinstance(body, dict) and isinstance(body.get("batch"), dict) else {}
    config = batch_body.get("inputConfig")
    if not isinstance(config, dict) or ("requests" in config) == ("fileName" in config):
        return _refused(rec, 400, "batch.inputConfig: exactly one of `requests` or `fileName` is required")
    failed = None
    if "fileName" in config:
        data = store.files.get(file_name(str(config["fileName"])))
        if data is None:
            return _refused(rec, 404, f"batch.inputConfig.fileName: no file {config['fileName']!r} (test server)")
        raw_size = len(data)
        items, failed = _from_file(data, model)
    else:
        found = _inlined((config.get("requests") or {}).get("requests"), model)
        if isinstance(found, str):
            return _refused(rec, 400, found)
        items = found
    settings = store.settings
    if len(items) > settings.max_requests or raw_size > settings.max_bytes:
        limit = f"at most {settings.max_requests} requests and {settings.max_bytes} bytes"
        return _refused(rec, 400, f"batch of {len(items)} requests, {raw_size} bytes: {limit} (test server)")
    extra = {"model": f"models/{model}", "display_name": batch_body.get("displayName"), "file": "fileName" in config}
    batch = Batch(store.new_id("", model, *(i.custom_id for i in items)), "gemini", request.path, items, extra)
    batch.extra["failed"] = failed
    store.add(batch)
    rec.status, rec.outcome = 200, "ok"
    return web.json_response(_view(batch, store))


async def models_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """``models/{model}:generateContent`` answered live, ``:batchGenerateContent`` creating a batch."""
    model, _, method = request.match_info["call"].partition(":")
    if method != "batchGenerateContent":
        return await generate_route(request, rec)
    refused = _check(request, rec) or await batch_fault(request, rec, google_error)
    return refused if refused is not None else await _create(request, rec, model)


def _found(request: web.Request, rec: RecordedRequest, name: str) -> Batch | web.Response:
    batch = request.app[BATCHES].get(name)
    if batch is None or batch.provider != "gemini":
        return _refused(rec, 404, f"Requested entity was not found: batches/{name} (test server)")
    return batch


async def batch_get_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """``GET /{version}/batches/{id}``: the job, ended once it has been polled enough."""
    refused = _check(request, rec) or await batch_fault(request, rec, google_error)
    if refused is not None:
        return refused
    batch = _found(request, rec, request.match_info["batch_id"])
    if isinstance(batch, web.Response):
        return batch
    store = request.app[BATCHES]
    advance(request.app[STATE], store, batch)
    rec.status, rec.outcome = 200, "ok"
    return web.json_response(_view(batch, store))


async def batch_list_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """``GET /{version}/batches``: every Gemini job, newest first, as ``batches.list`` pages them (one page)."""
    refused = _check(request, rec) or await batch_fault(request, rec, google_error)
    if refused is not None:
        return refused
    store = request.app[BATCHES]
    with store.lock:
        jobs = [b for b in store.batches.values() if b.provider == "gemini"]
    rec.status, rec.outcome = 200, "ok"
    return web.json_response({"operations": [_view(b, store) for b in reversed(jobs)]})


async def batch_call_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """``POST /{version}/batches/{id}:cancel``: the job is cancelled (items not answered yet are dropped)."""
    name, _, method = request.match_info["call"].partition(":")
    if method != "cancel":
        return _refused(rec, 404, f"method {method or '(none)'} is not served by the test server")
    refused = _check(request, rec) or await batch_fault(request, rec, google_error)
    if refused is not None:
        return refused
    batch = _found(request, rec, name)
    if isinstance(batch, web.Response):
        return batch
    cancel(request.app[STATE], request.app[BATCHES], batch)
    rec.status, rec.outcome = 200, "ok"
    return web.json_response({})
