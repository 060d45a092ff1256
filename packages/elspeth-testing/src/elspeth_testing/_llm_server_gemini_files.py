"""The LLM test server's Gemini Files API: the resumable upload and the download google-genai use for batch files.

``POST /upload/{version}/files`` with ``X-Goog-Upload-Command: start`` (and the API key) opens an
upload and answers its ``X-Goog-Upload-URL``; the SDK then posts the bytes there in chunks
(``upload``, the last ``upload, finalize``, each with its ``X-Goog-Upload-Offset``), the upload id
in the URL standing for the key, as on Google's servers. The finalized file is
``{"file": {"name": "files/...", ...}}``. ``GET /{version}/files/{id}:download?alt=media`` sends a
file's bytes back (an uploaded one or a batch's result file).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_batch_jobs import BATCHES
from elspeth_testing._llm_server_gemini import _check, google_error
from elspeth_testing._llm_server_state import RecordedRequest

__all__ = ["download_route", "file_name", "upload_route"]


def file_name(name: str) -> str:
    """The id in a file's resource name: ``files/abc`` -> ``abc``."""
    return name.removeprefix("files/")


def _refused(rec: RecordedRequest, status: int, message: str) -> web.Response:
    rec.status, rec.outcome = status, str(status)
    return google_error(status, message)


def _file(name: str, meta: dict[str, Any], size: int, origin: str, version: str) -> dict[str, Any]:
    now = datetime.fromtimestamp(time.time(), UTC).isoformat().replace("+00:00", "Z")
    return {
        "name": f"files/{name}",
        "displayName": meta.get("displayName") or name,
        "mimeType": meta.get("mimeType") or "application/octet-stream",
        "sizeBytes": str(size),
        "createTime": now,
        "updateTime": now,
        "state": "ACTIVE",
        "source": "UPLOADED",
        "uri": f"{origin}/{version}/files/{name}",
    }


async def _start(request: web.Request, rec: RecordedRequest) -> web.Response:
    refused = _check(request, rec)
    if refused is not None:
        return refused
    body = await request.json() if request.can_read_body else {}
    meta: dict[str, Any] = body["file"] if isinstance(body, dict) and isinstance(body.get("file"), dict) else {}
    rec.body = body
    store = request.app[BATCHES]
    wanted = meta.get("name")
    upload_id = file_name(str(wanted)) if wanted else store.new_id("upload-")
    with store.lock:
        store.uploads[upload_id] = (meta, bytearray())
    url = f"{request.url.origin()}{request.path}?upload_id={upload_id}"
    rec.status, rec.outcome = 200, "ok"
    return web.json_response({}, headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"})


async def upload_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Open an upload (``start``) or take one chunk of it (``upload`` / ``upload, finalize``)."""
    command = request.headers.get("X-Goog-Upload-Command", "").replace(" ", "")
    if command == "start":
        return await _start(request, rec)
    store = request.app[BATCHES]
    upload_id = request.query.get("upload_id", "")
    with store.lock:
        pending = store.uploads.get(upload_id)
    if pending is None or command not in {"upload", "upload,finalize"}:
        return _refused(rec, 400, f"no open upload {upload_id!r}, or the command {command!r} is not one")
    meta, data = pending
    chunk = await request.read()
    rec.body = f"<{len(chunk)} bytes>"
    if request.headers.get("X-Goog-Upload-Offset", "0") != str(len(data)):
        return _refused(rec, 400, f"X-Goog-Upload-Offset must be {len(data)}, the bytes received so far")
    data.extend(chunk)
    rec.status, rec.outcome = 200, "ok"
    if command == "upload":
        return web.Response(status=200, headers={"X-Goog-Upload-Status": "active"})
    with store.lock:
        store.files[upload_id] = bytes(data)
        del store.uploads[upload_id]
    version = request.match_info["version"]
    described = _file(upload_id, meta, len(data), str(request.url.origin()), version)
    return web.json_response({"file": described}, headers={"X-Goog-Upload-Status": "final"})


async def download_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """``GET /{version}/files/{id}:download?alt=media``: the file's bytes."""
    name, _, method = request.match_info["file_id"].partition(":")
    if method != "download" or request.query.get("alt") != "media":
        return _refused(rec, 404, "only files/{id}:download?alt=media is served by the test server")
    refused = _check(request, rec)
    if refused is not None:
        return refused
    data = request.app[BATCHES].files.get(name)
    if data is None:
        return _refused(rec, 404, f"Requested entity was not found: files/{name} (test server)")
    rec.status, rec.outcome = 200, "ok"
    return web.Response(body=data, content_type="application/octet-stream")
