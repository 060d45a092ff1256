"""The LLM test server's HTTP pieces every wire API shares: error replies, faults, hangs, drops, credentials.

Split from :mod:`elspeth_testing._llm_server_app` so each provider's wire API (OpenAI and Azure there,
Anthropic, Bedrock and Gemini in their own modules) answers faults the same way: :func:`answer_chat`
is the one path from a prompt to its reply or its fault, :func:`reshaped` puts a fault's error in a
provider's own shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_state import CHAT, Fault, RecordedRequest, ServerState, last_user_message, redact

__all__ = [
    "STATE",
    "Reply",
    "answer_chat",
    "reshaped",
    "STOPPING",
    "_credential",
    "_drop",
    "_echoed",
    "_error",
    "_faulted",
    "_gone",
    "_hang",
    "_new_record",
    "_presented",
    "_read",
    "_truncated",
]

STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)


def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "test_server_error", "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


def _credential(request: web.Request, state: ServerState, azure: bool) -> tuple[str | None, bool]:
    cfg = state.config
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:] if auth.lower().startswith("bearer ") else None
    if azure and "api-key" in request.headers:
        return "api-key", cfg.api_key is None or request.headers["api-key"] == cfg.api_key
    if bearer is None:
        return None, False
    if azure:
        return "bearer", cfg.bearer_token is None or bearer == cfg.bearer_token
    return "bearer", cfg.api_key is None or bearer == cfg.api_key


def refused_credential(request: web.Request, rec: RecordedRequest, azure: bool) -> web.Response | None:
    """The 404 (an Azure path without ``api-version``) or 401 (a wrong credential) to answer, else None."""
    rec.credential, rec.credential_ok = _credential(request, request.app[STATE], azure)
    if azure and "api-version" not in request.query:
        rec.status, rec.outcome = 404, "404"
        return _error(404, "Resource not found: api-version is required", "404")
    if not rec.credential_ok:
        rec.status, rec.outcome = 401, "401"
        return _error(401, "Incorrect API key provided (test server).", "invalid_api_key")
    return None


def _presented(request: web.Request) -> str:
    """The credential a request presented, as it sent it (for ``echo_credentials``)."""
    for name in ("Authorization", "api-key", "x-api-key", "x-goog-api-key", "Ocp-Apim-Subscription-Key"):
        if name in request.headers:
            return request.headers[name]
    return "(none)"


def _echoed(response: web.StreamResponse, request: web.Request) -> web.StreamResponse:
    """An error reply whose message quotes the request's credential, as a careless service's does."""
    if not isinstance(response, web.Response) or response.status < 400 or not isinstance(response.body, bytes):
        return response
    try:
        payload = json.loads(response.body)
        payload["error"]["message"] += f" Credential presented: {_presented(request)}"
    except (ValueError, KeyError, TypeError):
        return response
    keep = {k: v for k, v in response.headers.items() if k.lower() in {"retry-after", "location"}}
    return web.json_response(payload, status=response.status, headers=keep)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _hang(request: web.Request, limit: float) -> None:
    stopping = request.app[STOPPING]
    deadline = time.monotonic() + limit
    while not _gone(request) and not stopping.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.close()
    # aiohttp cannot write this to a closed transport; it notices and moves on
    return web.Response(status=204)


async def _read(request: web.Request, rec: RecordedRequest) -> Any:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        rec.body = raw.decode("utf-8", "replace")
        return None
    rec.body = body
    return body


def _new_record(request: web.Request, state: ServerState) -> RecordedRequest:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return RecordedRequest(
        peer=f"{peer[0]}:{peer[1]}" if peer else "",
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=redact(request.headers),
        body=None,
        prompt="",
        t=round(time.monotonic() - state.started, 6),
    )


def _truncated(reply: Any) -> web.Response:
    """A 200 whose JSON body stops halfway, as a proxy that cut the reply short sends."""
    text = json.dumps(reply)
    return web.Response(text=text[: len(text) // 2], content_type="application/json")


async def _faulted(
    request: web.Request, rec: RecordedRequest, fault: Fault, state: ServerState, stream: bool = False
) -> web.Response | None:
    """Answer with ``fault``, or return None to answer normally (a stream shows ``empty`` and ``malformed`` itself)."""
    cfg = state.config
    rec.outcome = fault.kind
    if fault.kind in {"ok", "malformed"} or (stream and fault.kind == "empty"):
        return None
    if fault.kind == "hang":
        await _hang(request, cfg.hang_s)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)
    if fault.kind == "drop":
        return _drop(request)
    if fault.kind == "empty":
        rec.status = 200
        return web.json_response({})
    if fault.kind == "content_filter":
        rec.status = 400
        return _error(400, "The prompt was filtered by the content management policy (test server).", "content_filter")
    status = fault.status
    assert status is not None
    rec.status = status
    if 300 <= status < 400:
        # a real redirect: what a client that follows it does next is the target server's to record
        headers = {"Location": cfg.redirect_location}
        return _error(status, f"Moved to {cfg.redirect_location} (test server).", str(status), headers)
    if status == 429:
        after = fault.retry_after if fault.retry_after is not None else cfg.retry_after_s
        headers = {} if after is None else {"Retry-After": f"{after:g}"}
        return _error(429, "Rate limit reached (test server).", "rate_limit_exceeded", headers)
    return _error(status, f"Injected {status} (test server).", str(status))


ErrorBuilder = Callable[[int, str, dict[str, str]], web.Response]
"""Builds a provider's error reply from the status, the message and the headers to keep."""


def reshaped(response: web.Response, build: ErrorBuilder) -> web.Response:
    """An OpenAI-shaped error reply from the shared fault code, rebuilt by ``build`` (keeping its headers)."""
    if response.status < 400 or not isinstance(response.body, bytes):
        return response
    try:
        message = json.loads(response.body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response
    keep = {k: v for k, v in response.headers.items() if k.lower() in {"retry-after", "location"}}
    return build(response.status, str(message), keep)


@dataclass(frozen=True)
class Reply:
    """A chat-completion reply to send in a provider's shape; ``malformed`` asks for it cut short."""

    chat: dict[str, Any]
    malformed: bool


async def answer_chat(
    request: web.Request,
    rec: RecordedRequest,
    chat: dict[str, Any],
    model: str,
    refusal: Callable[[], web.Response],
    build: ErrorBuilder,
) -> web.Response | Reply:
    """The reply to a chat-equivalent body, or the response that replaces it (a fault, a refusal, a client gone).

    Every provider's wire API goes through here after reading its own body into ``chat``, so a
    prompt gets the same reply, latency and faults whichever API it came through. ``refusal``
    answers a ``content_filter`` fault (or the refuse marker) as the provider refuses content.
    """
    state = request.app[STATE]
    rec.prompt = last_user_message(chat)
    fault, latency = state.choose(CHAT, request.path, rec.prompt, json.dumps(chat["messages"], sort_keys=True))
    if fault.kind not in {"429", "drop", "hang"} and latency:
        await asyncio.sleep(latency)
    if fault.kind == "content_filter" or (state.config.refuse_marker and state.config.refuse_marker in rec.prompt):
        rec.outcome = "content_filter"
        return refusal()
    answer = await _faulted(request, rec, fault, state)
    if answer is not None:
        return reshaped(answer, build)
    reply = state.completion(chat, model)
    if _gone(request):
        rec.outcome = "client_gone"
        return web.Response(status=204)
    rec.status = 200
    return Reply(reply, fault.kind == "malformed")
