"""The ``anthropic`` SDK side: the request body, the reply and the translation of the SDK's errors.

Imported only on a client's first call, so ``elspeth plugins list`` never imports ``anthropic``.
"""

from __future__ import annotations

from typing import Any

import anthropic

from elspeth import (
    LLMConnectionError,
    LLMContentRefused,
    LLMError,
    LLMRequest,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    LoopBoundSDK,
    Usage,
    connection_failure,
    error_for_status,
    redirect_refused,
)

__all__ = ["LoopBoundSDK", "message_body", "send", "to_response", "translate_error"]

_REJECTED_HINT = {
    401: "the API key was refused; check the environment variable named by `api_key_env`",
    403: "the key may not use this model",
    404: "no such model or path; check `model` and `base_url`",
}


def message_body(options: Any, request: LLMRequest) -> dict[str, Any]:
    """The Messages body: the options' settings, then ``params``, then the request's own params."""
    body: dict[str, Any] = {"model": options.model, "max_tokens": options.max_tokens}
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.stop:
        body["stop_sequences"] = list(options.stop)
    if options.json_schema is not None:
        body["output_format"] = {"type": "json_schema", "schema": options.json_schema}
    body.update(options.params)
    body.update(request.params)
    if request.system:
        block: dict[str, Any] = {"type": "text", "text": request.system}
        if options.cache_system:
            block["cache_control"] = {"type": "ephemeral"}
        body["system"] = [block]
    body["messages"] = [{"role": "user", "content": request.user}]
    return body


def to_response(message: Any, where: str) -> LLMResponse:
    """An :class:`~elspeth.LLMResponse` from the SDK's ``Message``; a ``refusal`` stop is a content refusal."""
    if getattr(message, "stop_reason", None) == "refusal":
        raise LLMContentRefused(f"{where}: the model refused to answer (stop_reason: refusal)")
    blocks = getattr(message, "content", None)
    if not isinstance(blocks, list):
        raise LLMServerError(f"{where}: the reply has no content blocks")
    text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
    usage = getattr(message, "usage", None)
    read = (getattr(usage, "cache_read_input_tokens", 0) or 0) if usage is not None else 0
    created = (getattr(usage, "cache_creation_input_tokens", 0) or 0) if usage is not None else 0
    prompt = ((getattr(usage, "input_tokens", 0) or 0) if usage is not None else 0) + read + created
    return LLMResponse(
        content=text,
        usage=Usage(
            prompt_tokens=prompt,
            completion_tokens=(getattr(usage, "output_tokens", 0) or 0) if usage is not None else 0,
            cached_tokens=read,
        ),
        model=getattr(message, "model", None),
        raw=message,
    )


def _server_message(exc: Any) -> tuple[str, str | None]:
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or exc), (str(error["type"]) if error.get("type") else None)
    return str(getattr(exc, "message", exc)), None


def _status_error(exc: Any, where: str) -> LLMError:
    status = exc.status_code
    message, kind = _server_message(exc)
    text = f"{where}: HTTP {status}: {message}"
    refused = status == 400 and "content filtering" in message.lower()
    overloaded = kind == "overloaded_error"
    hint = _REJECTED_HINT.get(status)
    return error_for_status(text, status, exc.response.headers, refused=refused, overloaded=overloaded, hint=hint)


def translate_error(exc: BaseException, where: str) -> LLMError | None:
    """The :mod:`elspeth.llm_errors` exception for an SDK failure, or None if it is not one."""
    if isinstance(exc, anthropic.APIConnectionError) and (reason := connection_failure(exc)) is not None:
        return LLMConnectionError(f"{where}: {reason}")
    if isinstance(exc, anthropic.APITimeoutError):
        return LLMTimeout(f"{where}: no answer within the client's `timeout`")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMConnectionError(f"{where}: connection failed: {type(cause).__name__}: {cause}".rstrip(": "))
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc, where)
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        return LLMServerError(f"{where}: the server sent a reply that is not a valid message: {exc}")
    return None


async def send(sdk: Any, body: dict[str, Any], where: str) -> LLMResponse:
    """Send one Messages request and translate the outcome (a redirect is refused, never followed)."""
    options: dict[str, Any] = {}
    if "timeout" in body:
        options["timeout"] = body.pop("timeout")
    try:
        message = await sdk.post("/v1/messages", body=body, cast_to=anthropic.types.Message, options=options)
    except Exception as exc:
        if isinstance(exc, anthropic.APIStatusError) and 300 <= exc.status_code < 400:
            raise redirect_refused(where, exc.status_code, exc.response.headers.get("location")) from exc
        translated = translate_error(exc, where)
        if translated is None:
            raise
        raise translated from exc
    return to_response(message, where)
