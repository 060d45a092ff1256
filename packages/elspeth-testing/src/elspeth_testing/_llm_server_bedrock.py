"""The LLM test server's Amazon Bedrock Converse API: ``POST /model/{modelId}/converse``, signed with SigV4.

The request is read as the equivalent chat completion (``system`` blocks as a system message, each
content block's text, ``outputConfig``'s JSON schema as ``response_format``), so the reply, its
usage and every fault are the same as the OpenAI endpoint's for the same prompt. Errors have
Bedrock's shape: ``{"message": ...}`` with the exception's name in ``x-amzn-ErrorType``, which is
how botocore tells ``ThrottlingException`` from ``ValidationException``. A ``content_filter``
fault is a 200 with ``stopReason: guardrail_intervened``, as a guardrail answers.

The signature is not verified (botocore computes it; checking it would test botocore): the server
reads the access key id and the region from the ``Credential=`` scope, requires the access key id
to be the configured ``api_key`` when one is set, and records ``sigv4/REGION`` as the credential.
A ``cachePoint`` block after the system prompt is reported as cache write, then cache read tokens.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_http import STATE, Reply, _read, _truncated, answer_chat
from elspeth_testing._llm_server_state import RecordedRequest, tokens

__all__ = ["converse_route", "to_chat_body"]

_EXCEPTIONS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/bedrock/aws4_request")
_BLOCKED = "Sorry, the model cannot answer this question. (test server guardrail)"


def bedrock_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error as Bedrock sends it: the message in the body, the exception's name in ``x-amzn-ErrorType``."""
    name = _EXCEPTIONS.get(status, "InternalServerException" if status >= 500 else "ValidationException")
    return web.json_response({"message": message}, status=status, headers={**(headers or {}), "x-amzn-ErrorType": name})


def _texts(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    return "".join(str(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def _cache_point(body: dict[str, Any]) -> bool:
    system = body.get("system")
    return isinstance(system, list) and any(isinstance(b, dict) and "cachePoint" in b for b in system)


def to_chat_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat-completions body equivalent to a Converse body (what the reply is computed from)."""
    messages: list[dict[str, Any]] = []
    system = _texts(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append({"role": message.get("role"), "content": _texts(message.get("content"))})
    config = body.get("inferenceConfig")
    max_tokens = config.get("maxTokens") if isinstance(config, dict) else None
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    output = body.get("outputConfig")
    text_format = output.get("textFormat") if isinstance(output, dict) else None
    structure = text_format.get("structure") if isinstance(text_format, dict) else None
    schema_text = (structure.get("jsonSchema") or {}).get("schema") if isinstance(structure, dict) else None
    if isinstance(schema_text, str):
        schema = json.loads(schema_text)
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    return chat


def _check(request: web.Request, rec: RecordedRequest) -> web.Response | None:
    state = request.app[STATE]
    scope = _SCOPE.search(request.headers.get("Authorization", ""))
    if scope is None:
        rec.credential, rec.credential_ok = None, False
        rec.status, rec.outcome = 403, "403"
        return bedrock_error(403, "Missing Authentication Token (test server): the request is not SigV4-signed")
    access_key, region = scope.groups()
    rec.credential = f"sigv4/{region}"
    rec.credential_ok = state.config.api_key is None or access_key == state.config.api_key
    if not rec.credential_ok:
        rec.status, rec.outcome = 403, "403"
        return bedrock_error(403, "The security token included in the request is invalid (test server).")
    return None


def _converse_reply(chat_reply: dict[str, Any], cache: tuple[int, int], duration_ms: int) -> dict[str, Any]:
    choice = chat_reply["choices"][0]
    usage = chat_reply["usage"]
    stop = {"length": "max_tokens"}.get(choice["finish_reason"], "end_turn")
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": choice["message"]["content"]}]}},
        "stopReason": stop,
        "usage": {
            "inputTokens": usage["prompt_tokens"] - cache[0] - cache[1],
            "outputTokens": usage["completion_tokens"],
            "totalTokens": usage["total_tokens"],
            "cacheReadInputTokens": cache[0],
            "cacheWriteInputTokens": cache[1],
        },
        "metrics": {"latencyMs": duration_ms},
    }


def _refusal(rec: RecordedRequest) -> web.Response:
    rec.status = 200
    blocked = {
        "output": {"message": {"role": "assistant", "content": [{"text": _BLOCKED}]}},
        "stopReason": "guardrail_intervened",
        "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
        "metrics": {"latencyMs": 1},
    }
    return web.json_response(blocked)


async def converse_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Answer one Converse request (no streaming)."""
    state = request.app[STATE]
    refused = _check(request, rec)
    if refused is not None:
        return refused
    model = request.match_info["model_id"]
    body = await _read(request, rec)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        rec.status, rec.outcome = 400, "400"
        return bedrock_error(400, "1 validation error detected: Value at 'messages' failed to satisfy constraint")
    chat = to_chat_body(body, model)
    system = _texts(body.get("system"))
    seen = system in state.seen_systems
    answer = await answer_chat(request, rec, chat, model, lambda: _refusal(rec), bedrock_error)
    if not isinstance(answer, Reply):
        return answer
    cache = (0, 0)
    if _cache_point(body):
        cache = (tokens(system), 0) if seen else (0, tokens(system))
    took_ms = max(1, round((time.monotonic() - state.started - rec.t) * 1000))
    reply = _converse_reply(answer.chat, cache, took_ms)
    return _truncated(reply) if answer.malformed else web.json_response(reply)
