"""The LLM test server's Anthropic Messages API: ``POST /v1/messages``, ``x-api-key`` or ``Authorization: Bearer``.

The request is read as the equivalent chat completion (``system`` as a system message, each content
block's text), so the reply, its usage and every fault are the same as the OpenAI endpoint's for
the same prompt. Errors have Anthropic's shape (``{"type": "error", "error": {"type", "message"}}``),
and ``529`` answers ``overloaded_error`` as the real API does. A ``system`` block marked
``cache_control`` that the server has seen before is reported as ``cache_read_input_tokens``, the
first time as ``cache_creation_input_tokens``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_http import STATE, _faulted, _gone, _read, _truncated
from elspeth_testing._llm_server_state import CHAT, RecordedRequest, last_user_message

__all__ = ["messages_route", "to_chat_body"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _cached_system(body: dict[str, Any]) -> bool:
    system = body.get("system")
    return isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control") for b in system)


def to_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions body equivalent to an Anthropic Messages body (what the reply is computed from)."""
    messages: list[dict[str, Any]] = []
    system = _text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append({"role": message.get("role"), "content": _text(message.get("content"))})
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "max_tokens": body.get("max_tokens")}
    schema = ((body.get("output_format") or {}).get("schema")) if isinstance(body.get("output_format"), dict) else None
    if schema is not None:
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    return chat


def _anthropic_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error")
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}}, status=status, headers=headers
    )


def _reshaped(response: web.Response) -> web.Response:
    """An OpenAI-shaped error reply from the shared fault code, in Anthropic's shape (headers kept)."""
    if response.status < 400 or not isinstance(response.body, bytes):
        return response
    try:
        message = json.loads(response.body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response
    keep = {k: v for k, v in response.headers.items() if k.lower() in {"retry-after", "location"}}
    return _anthropic_error(response.status, message, keep)


def _message(chat_reply: dict[str, Any], model: str, cache: tuple[int, int]) -> dict[str, Any]:
    choice = chat_reply["choices"][0]
    usage = chat_reply["usage"]
    stop = {"length": "max_tokens"}.get(choice["finish_reason"], "end_turn")
    return {
        "id": "msg_" + chat_reply["id"].removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": choice["message"]["content"]}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage["prompt_tokens"] - cache[0] - cache[1],
            "output_tokens": usage["completion_tokens"],
            "cache_creation_input_tokens": cache[1],
            "cache_read_input_tokens": cache[0],
        },
    }


def _check(request: web.Request, rec: RecordedRequest) -> web.Response | None:
    state = request.app[STATE]
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:] if auth.lower().startswith("bearer ") else None  # newer SDK releases send the key so
    key = request.headers.get("x-api-key", bearer)
    rec.credential = ("x-api-key" if "x-api-key" in request.headers else "bearer") if key is not None else None
    rec.credential_ok = key is not None and (state.config.api_key is None or key == state.config.api_key)
    if not rec.credential_ok:
        rec.status, rec.outcome = 401, "401"
        return _anthropic_error(401, "invalid x-api-key (test server)")
    if "anthropic-version" not in request.headers:
        rec.status, rec.outcome = 400, "400"
        return _anthropic_error(400, "anthropic-version: header is required")
    return None


async def messages_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Answer one Anthropic Messages request (no streaming)."""
    state = request.app[STATE]
    refused = _check(request, rec)
    if refused is not None:
        return refused
    body = await _read(request, rec)
    if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
        rec.status, rec.outcome = 400, "400"
        return _anthropic_error(400, "the body must be JSON with `model`, `messages` and `max_tokens`")
    if not isinstance(body.get("max_tokens"), int) or body.get("stream"):
        rec.status, rec.outcome = 400, "400"
        return _anthropic_error(400, "max_tokens: Field required (and this server does not stream Messages)")
    chat = to_chat_body(body)
    rec.prompt = last_user_message(chat)
    fault, latency = state.choose(CHAT, request.path, rec.prompt, json.dumps(chat["messages"], sort_keys=True))
    if fault.kind not in {"429", "drop", "hang"} and latency:
        await asyncio.sleep(latency)
    if fault.kind == "content_filter" or (state.config.refuse_marker and state.config.refuse_marker in rec.prompt):
        rec.status, rec.outcome = 400, "content_filter"
        return _anthropic_error(400, "Output blocked by content filtering policy (test server).")
    answer = await _faulted(request, rec, fault, state)
    if answer is not None:
        return _reshaped(answer)
    seen = _text(body.get("system")) in state.seen_systems
    reply = state.completion(chat, str(body["model"]))
    cache = (0, 0)
    if _cached_system(body):
        system_tokens = max(1, len(_text(body.get("system"))) // 4)
        cache = (system_tokens, 0) if seen else (0, system_tokens)
    if _gone(request):
        rec.outcome = "client_gone"
        return web.Response(status=204)
    rec.status = 200
    message = _message(reply, str(body["model"]), cache)
    return _truncated(message) if fault.kind == "malformed" else web.json_response(message)
