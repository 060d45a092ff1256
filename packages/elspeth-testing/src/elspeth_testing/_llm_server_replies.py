"""What the LLM test server answers with: reply contents, ``n`` choices, and a reply cut into streamed chunks.

Pure functions over plain dicts; :mod:`elspeth_testing._llm_server_state` decides the numbers and
:mod:`elspeth_testing._llm_server_app` writes the bytes. The streamed form follows the OpenAI API's
server-sent events: one ``chat.completion.chunk`` per piece of each choice (the first carrying
``delta.role``), one per choice with its ``finish_reason``, with ``stream_options.include_usage`` a last
chunk with empty ``choices`` and the ``usage`` (every earlier chunk then has ``"usage": null``), and
``data: [DONE]``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["DONE", "MAX_N", "check_choose", "check_stream_request", "chunks", "content_for", "sse", "tokens"]

DONE = b"data: [DONE]\n\n"
MAX_N = 128  # the OpenAI API's own limit on `n`
PIECE_CHARS = 12  # about three tokens a chunk, as the real API streams


def check_choose(value: dict[str, str]) -> dict[str, str]:
    """The server config's ``choose``, refused unless every pattern is a regular expression."""
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"choose: {pattern!r} is not a regular expression: {exc}") from None
    return value


def tokens(text: str) -> int:
    """About four characters a token, as OpenAI's own rule of thumb has it."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _from_schema(schema: Any, score: float, rationale: str, pick: str | None = None) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: _from_schema(sub, score, rationale, pick) for name, sub in props.items()}
    if kind == "number":
        return score
    if kind == "integer":
        return round(score * 10)
    if kind == "boolean":
        return score >= 0.5
    if kind == "array":
        return [_from_schema(schema.get("items") or {"type": "string"}, score, rationale, pick)]
    if isinstance(schema, dict) and "enum" in schema:
        return pick if pick in schema["enum"] else schema["enum"][0]
    return rationale


def content_for(body: dict[str, Any], score: float, rationale: str, pick: str | None = None) -> tuple[str, str]:
    """The reply text for a request (plain, ``json_object`` or ``json_schema``) and its ``finish_reason``.

    ``pick`` is the value a ``json_schema`` enum answers with when it is one of the enum's (a scripted
    judge's verdict, from the config's ``choose``); otherwise an enum answers with its first value.
    """
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        content = json.dumps({"score": score, "rationale": rationale})
    elif fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        content = json.dumps(_from_schema(schema, score, rationale, pick))
    else:
        content = f"Score: {score:.2f}\n{rationale}"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and tokens(content) > limit:
        return content[: limit * 4], "length"
    return content, "stop"


def check_stream_request(body: dict[str, Any]) -> str | None:
    """Why the real API would refuse this body's ``n``, ``stream`` or ``stream_options`` (None: it would not)."""
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N):
        return f"`n` must be an integer from 1 to {MAX_N}, got {n!r}"
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return f"`stream` must be a boolean, got {stream!r}"
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            return "`stream_options` is only allowed when `stream` is true"
        if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
            return "`stream_options` must be an object such as {include_usage: true}"
    return None


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)] or [""]


def chunks(reply: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """``reply`` (a ``chat.completion``) as the ``chat.completion.chunk`` objects the real API streams."""
    base = {
        "id": reply["id"],
        "object": "chat.completion.chunk",
        "created": reply["created"],
        "model": reply["model"],
        "system_fingerprint": reply.get("system_fingerprint"),
    }
    if include_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    choices = reply["choices"]
    out = [chunk(c["index"], {"role": "assistant", "content": "", "refusal": None}) for c in choices]
    pieces = [_pieces(c["message"]["content"] or "") for c in choices]
    for k in range(max(len(p) for p in pieces)):
        out.extend(chunk(c["index"], {"content": p[k]}) for c, p in zip(choices, pieces, strict=True) if k < len(p))
    out.extend(chunk(c["index"], {}, c["finish_reason"]) for c in choices)
    if include_usage:
        out.append({**base, "choices": [], "usage": reply["usage"]})
    return out


def sse(item: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``item`` as JSON."""
    return b"data: " + json.dumps(item, separators=(",", ":")).encode() + b"\n\n"
