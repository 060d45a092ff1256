"""The LLM test server's OpenAI Files and Batches APIs, and Azure OpenAI's global batch shape.

Routes (``/v1/...`` for OpenAI; ``/openai/...?api-version=...`` for Azure, whose lines name the
deployment as ``model``):
    ``POST files`` (multipart ``purpose``, ``file``), ``GET files/{id}``, ``GET files/{id}/content``;
    ``POST batches`` (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``),
    ``GET batches`` (newest first), ``GET batches/{id}``, ``POST batches/{id}/cancel``.

A batch moves ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed`` one step every
``polls_per_step`` retrievals (``BatchBook.polls_per_step``, 1 by default; ``/_elspeth/batches`` sets
it from another process). Each line is answered as the chat endpoint answers the same body (same
reply, usage and faults: scripts and fault rates apply per line, ``path`` matching the line's
``url``): a status fault becomes that line's error in the error file, ``hang`` and a prompt holding
``BatchBook.expire_marker`` leave the line unanswered, and the batch ends ``expired`` with those lines
as ``batch_expired`` errors. A cancelled batch ends ``cancelled`` with no answers.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_http import STATE, _error, refused_credential
from elspeth_testing._llm_server_state import CHAT, RecordedRequest, ServerState, last_user_message

__all__ = ["BOOK", "BatchBook", "add_batch_routes"]

_STEPS = ("validating", "in_progress", "finalizing")


@dataclass
class _Batch:
    body: dict[str, Any]
    id: str
    created: int
    azure: bool
    retrievals: int = 0
    status: str = "validating"
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchBook:
    """Files and batches the server holds (forgotten only when the server stops)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, _Batch] = {}
        self.polls_per_step = 1
        self.expire_marker = "EXPIRE-IN-BATCH"
        self.lock = threading.RLock()  # finishing a batch adds its files while holding it

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """Keep ``content`` and return its file object."""
        with self.lock:
            file_id = f"file-{len(self.files) + 1:06d}"
            meta = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
            }
            self.files[file_id] = (meta, content)
        return meta


BOOK: web.AppKey[BatchBook] = web.AppKey("batches", BatchBook)


def _is_azure(request: web.Request) -> bool:
    return request.path.startswith("/openai/")


async def _upload(request: web.Request, rec: RecordedRequest) -> web.Response:
    azure = _is_azure(request)
    if (refused := refused_credential(request, rec, azure)) is not None:
        return refused
    form = await request.post()
    upload, purpose = form.get("file"), str(form.get("purpose") or "")
    if not hasattr(upload, "file") or purpose != "batch":
        rec.status = 400
        return _error(400, "multipart `file` and `purpose: batch` are required (test server)", "invalid_request")
    content = upload.file.read()  # type: ignore[union-attr]
    problem = _check_lines(content, azure)
    if problem:
        rec.status = 400
        return _error(400, problem, "invalid_file")
    rec.status = 200
    return web.json_response(request.app[BOOK].add_file(content, str(upload.filename), purpose))  # type: ignore[union-attr]


def _check_lines(content: bytes, azure: bool) -> str | None:
    seen: set[str] = set()
    for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), 1):
        try:
            item = json.loads(line)
        except ValueError:
            return f"line {number} is not JSON"
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or custom_id in seen:
            return f"line {number}: `custom_id` missing or repeated"
        seen.add(custom_id)
        body = item.get("body")
        if item.get("method") != "POST" or not isinstance(body, dict) or not body.get("model"):
            return (
                f"line {number}: needs method POST, url and a body with `model` ({'deployment' if azure else 'model'})"
            )
    return None if seen else "the file has no lines"


def _batch_object(batch: _Batch) -> dict[str, Any]:
    body = batch.body
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": body.get("endpoint"),
        "input_file_id": body.get("input_file_id"),
        "completion_window": body.get("completion_window", "24h"),
        "status": batch.status,
        "created_at": batch.created,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "request_counts": dict(batch.counts),
        "metadata": body.get("metadata"),
        "errors": None,
    }


async def _create(request: web.Request, rec: RecordedRequest) -> web.Response:
    if (refused := refused_credential(request, rec, _is_azure(request))) is not None:
        return refused
    body = await request.json()
    rec.body = body
    book = request.app[BOOK]
    file = book.files.get(str(body.get("input_file_id")))
    if file is None or body.get("endpoint") not in {"/v1/chat/completions", "/chat/completions"}:
        rec.status = 400
        return _error(400, "unknown `input_file_id`, or `endpoint` is not /v1/chat/completions", "invalid_request")
    with book.lock:
        batch = _Batch(body, f"batch_{len(book.batches) + 1:06d}", int(time.time()), _is_azure(request))
        batch.counts["total"] = len(file[1].splitlines())
        book.batches[batch.id] = batch
    rec.status = 200
    return web.json_response(_batch_object(batch))


def _answer_line(state: ServerState, book: BatchBook, item: dict[str, Any], azure: bool) -> dict[str, Any] | None:
    """The output line for one input line, or None when it goes unanswered (expired)."""
    body, custom_id = item["body"], item["custom_id"]
    prompt = last_user_message(body)
    if book.expire_marker in prompt:
        return None
    fault, _ = state.choose(CHAT, str(item.get("url")), prompt, json.dumps(body.get("messages"), sort_keys=True))
    line_id = f"batch_req_{custom_id}"
    if fault.kind == "hang":
        return None
    failing = fault.status if fault.status is not None and fault.status >= 300 else None
    refused = bool(state.config.refuse_marker) and state.config.refuse_marker in prompt
    if failing is not None or refused:
        status, code = (failing, str(failing)) if failing is not None else (400, "content_filter")
        error = {"error": {"message": f"HTTP {status} (test server)", "type": "test_server_error", "code": code}}
        return {
            "id": line_id,
            "custom_id": custom_id,
            "response": {"status_code": status, "body": error},
            "error": None,
        }
    model = state.config.azure_model if azure else str(body["model"])
    reply = state.completion(body, model)
    return {"id": line_id, "custom_id": custom_id, "response": {"status_code": 200, "body": reply}, "error": None}


def _finish(state: ServerState, book: BatchBook, batch: _Batch) -> None:
    content = book.files[str(batch.body["input_file_id"])][1]
    done: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for raw in content.decode("utf-8").splitlines():
        item = json.loads(raw)
        line = _answer_line(state, book, item, batch.azure)
        if line is None:
            late = {"code": "batch_expired", "message": "This request could not be executed before the window."}
            errors.append(
                {
                    "id": f"batch_req_{item['custom_id']}",
                    "custom_id": item["custom_id"],
                    "response": None,
                    "error": late,
                }
            )
        elif line["response"]["status_code"] == 200:
            done.append(line)
        else:
            errors.append(line)
    expired = sum(e["error"] is not None for e in errors)
    batch.counts.update(completed=len(done), failed=len(errors) - expired)
    if done:
        batch.output_file_id = book.add_file(_jsonl(done), f"{batch.id}_output.jsonl", "batch_output")["id"]
    if errors:
        batch.error_file_id = book.add_file(_jsonl(errors), f"{batch.id}_error.jsonl", "batch_output")["id"]
    batch.status = "expired" if expired else "completed"


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _no_batch(rec: RecordedRequest) -> web.Response:
    rec.status = 404
    return _error(404, "No batch found with that id (test server).", "not_found")


async def _retrieve(request: web.Request, rec: RecordedRequest) -> web.Response:
    if (refused := refused_credential(request, rec, _is_azure(request))) is not None:
        return refused
    book = request.app[BOOK]
    batch = book.batches.get(request.match_info["batch_id"])
    if batch is None:
        return _no_batch(rec)
    with book.lock:
        batch.retrievals += 1
        if batch.status == "cancelling":
            batch.status = "cancelled"
        elif batch.status in _STEPS:
            step = min(batch.retrievals // book.polls_per_step, len(_STEPS))
            if step >= len(_STEPS):
                _finish(request.app[STATE], book, batch)
            else:
                batch.status = _STEPS[step]
    rec.status = 200
    return web.json_response(_batch_object(batch))


async def _list(request: web.Request, rec: RecordedRequest) -> web.Response:
    if (refused := refused_credential(request, rec, _is_azure(request))) is not None:
        return refused
    batches = [_batch_object(b) for b in reversed(request.app[BOOK].batches.values())]
    rec.status = 200
    return web.json_response({"object": "list", "data": batches, "has_more": False})


async def _cancel(request: web.Request, rec: RecordedRequest) -> web.Response:
    if (refused := refused_credential(request, rec, _is_azure(request))) is not None:
        return refused
    batch = request.app[BOOK].batches.get(request.match_info["batch_id"])
    if batch is None:
        return _no_batch(rec)
    if batch.status in _STEPS:
        batch.status = "cancelling"
    rec.status = 200
    return web.json_response(_batch_object(batch))


async def _file(request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
    if (refused := refused_credential(request, rec, _is_azure(request))) is not None:
        return refused
    found = request.app[BOOK].files.get(request.match_info["file_id"])
    if found is None:
        rec.status = 404
        return _error(404, "No such file (test server).", "not_found")
    rec.status = 200
    if request.path.endswith("/content"):
        return web.Response(body=found[1], content_type="application/octet-stream")
    return web.json_response(found[0])


async def _control(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    data = await request.json()
    book.polls_per_step = max(1, int(data.get("polls_per_step", book.polls_per_step)))
    book.expire_marker = str(data.get("expire_marker", book.expire_marker))
    return web.json_response({"polls_per_step": book.polls_per_step, "expire_marker": book.expire_marker})


def add_batch_routes(app: web.Application, recorded: Any) -> None:
    """Add the Files and Batches routes (each wrapped by ``recorded``, so they are in the request log)."""
    app[BOOK] = BatchBook()
    for prefix in ("/v1", "/openai"):
        app.router.add_post(f"{prefix}/files", recorded(_upload))
        app.router.add_get(f"{prefix}/files/{{file_id}}", recorded(_file))
        app.router.add_get(f"{prefix}/files/{{file_id}}/content", recorded(_file))
        app.router.add_post(f"{prefix}/batches", recorded(_create))
        app.router.add_get(f"{prefix}/batches", recorded(_list))
        app.router.add_get(f"{prefix}/batches/{{batch_id}}", recorded(_retrieve))
        app.router.add_post(f"{prefix}/batches/{{batch_id}}/cancel", recorded(_cancel))
    app.router.add_post("/_elspeth/batches", _control)
