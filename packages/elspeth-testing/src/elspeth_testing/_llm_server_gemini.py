"""The LLM test server's Gemini ``generateContent``: the Gemini API and Vertex AI paths, as google-genai calls them.

Routes: ``POST /{version}/models/{model}:generateContent`` (the Gemini API, key in ``x-goog-api-key``
or ``?key=``) and ``POST /{version}/projects/{project}/locations/{location}/publishers/google/models/
{model}:generateContent`` (Vertex AI, an OAuth ``Authorization: Bearer`` token, compared with
``bearer_token`` when that is set). The request is read as the equivalent chat completion
(``systemInstruction`` as a system message, each part's text, ``responseJsonSchema`` or
``responseSchema`` as ``response_format``), so the reply, its usage and every fault are the same as
the OpenAI endpoint's for the same prompt. Errors have Google's shape
(``{"error": {"code", "message", "status"}}``); a 429 carries its wait as a ``google.rpc.RetryInfo``
``retryDelay`` in ``details`` and no ``Retry-After``, as the real API does. A ``content_filter`` fault
is a 200 whose ``promptFeedback`` has ``blockReason: SAFETY`` and no candidates.

``POST /token`` is Google's OAuth token endpoint for a service account (the ``token_uri`` of its
key file): a JWT-bearer grant whose assertion names the service account gets ``bearer_token`` (or a
fixed test token) as its access token; the signature is not checked.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from elspeth_testing._llm_server_http import STATE, Reply, _read, _truncated, answer_chat
from elspeth_testing._llm_server_state import RecordedRequest, tokens

__all__ = ["generate_route", "to_chat_body", "token_route"]

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_RATINGS = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def google_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error as Google's APIs send it; a ``Retry-After`` in ``headers`` becomes a ``RetryInfo`` detail."""
    kept = dict(headers or {})
    after = next((kept.pop(k) for k in list(kept) if k.lower() == "retry-after"), None)
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUSES.get(status, "UNKNOWN")}
    if after is not None:
        error["details"] = [{"@type": _RETRY_INFO, "retryDelay": f"{float(after):g}s"}]
    return web.json_response({"error": error}, status=status, headers=kept)


def _parts(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return "".join(str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def to_chat_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The chat-completions body equivalent to a generateContent body (what the reply is computed from)."""
    messages: list[dict[str, Any]] = []
    system = _parts(body.get("systemInstruction"))
    if system:
        messages.append({"role": "system", "content": system})
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            role = "assistant" if content.get("role") == "model" else "user"
            messages.append({"role": role, "content": _parts(content)})
    config = body.get("generationConfig")
    config = config if isinstance(config, dict) else {}
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": config.get("maxOutputTokens")}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if isinstance(schema, dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    return chat


def _check(request: web.Request, rec: RecordedRequest) -> web.Response | None:
    config = request.app[STATE].config
    if "project" in request.match_info:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        rec.credential = "bearer" if token is not None else None
        rec.credential_ok = token is not None and (config.bearer_token is None or token == config.bearer_token)
        failed = "Request had invalid authentication credentials (test server)."
    else:
        key = request.headers.get("x-goog-api-key", request.query.get("key"))
        rec.credential = "x-goog-api-key" if key is not None else None
        rec.credential_ok = key is not None and (config.api_key is None or key == config.api_key)
        failed = "API key not valid. Please pass a valid API key. (test server)"
    if rec.credential_ok:
        return None
    # as Google answers: Vertex 401; the Gemini API 403 without a key, 400 for a wrong one
    status = 401 if "project" in request.match_info else (403 if rec.credential is None else 400)
    rec.status, rec.outcome = status, str(status)
    return google_error(status, failed)


def _reply(chat_reply: dict[str, Any], model: str) -> dict[str, Any]:
    choice = chat_reply["choices"][0]
    usage = chat_reply["usage"]
    finish = {"length": "MAX_TOKENS"}.get(choice["finish_reason"], "STOP")
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": choice["message"]["content"]}]},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": usage["prompt_tokens"],
            "candidatesTokenCount": usage["completion_tokens"],
            "totalTokenCount": usage["total_tokens"],
            "cachedContentTokenCount": usage["prompt_tokens_details"]["cached_tokens"],
        },
        "modelVersion": model,
        "responseId": chat_reply["id"].removeprefix("chatcmpl-"),
    }


def _blocked(rec: RecordedRequest, chat: dict[str, Any]) -> web.Response:
    rec.status = 200
    prompt_tokens = sum(tokens(str(m["content"])) + 4 for m in chat["messages"]) + 3  # as the chat reply counts
    feedback = {"blockReason": "SAFETY", "safetyRatings": _RATINGS}
    usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    return web.json_response({"promptFeedback": feedback, "usageMetadata": usage})


async def generate_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Answer one ``generateContent`` call (no streaming: ``streamGenerateContent`` is not served)."""
    model, _, method = request.match_info["call"].partition(":")
    if method != "generateContent":
        rec.status, rec.outcome = 404, "404"
        return google_error(404, f"method {method or '(none)'} is not served by the test server")
    refused = _check(request, rec)
    if refused is not None:
        return refused
    body = await _read(request, rec)
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
        rec.status, rec.outcome = 400, "400"
        return google_error(400, "* GenerateContentRequest.contents: contents is not specified")
    chat = to_chat_body(body, model)
    answer = await answer_chat(request, rec, chat, model, lambda: _blocked(rec, chat), google_error)
    if not isinstance(answer, Reply):
        return answer
    reply = _reply(answer.chat, model)
    return _truncated(reply) if answer.malformed else web.json_response(reply)


_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _claims(assertion: str) -> dict[str, Any] | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


async def token_route(request: web.Request, rec: RecordedRequest) -> web.Response:
    """Exchange a service account's signed JWT for an access token, as ``oauth2.googleapis.com/token`` does."""
    form = await request.post()
    rec.body = {k: ("<redacted>" if k == "assertion" else str(v)) for k, v in form.items()}
    claims = _claims(str(form.get("assertion", "")))
    if form.get("grant_type") != _JWT_BEARER or claims is None or not claims.get("iss"):
        rec.status, rec.outcome = 400, "400"
        refused = {"error": "invalid_grant", "error_description": "a signed JWT is required"}
        return web.json_response(refused, status=400)
    rec.prompt = ""
    rec.credential, rec.credential_ok = f"service-account {claims['iss']}", True
    rec.status, rec.outcome = 200, "ok"
    token = request.app[STATE].config.bearer_token or "ya29.elspeth-test-server-token"
    return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
