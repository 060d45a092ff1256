"""The ``google-genai`` side: the generation config, the reply and the translation of the SDK's errors.

Imported only on a client's first call, so ``elspeth plugins list`` never imports ``google-genai``.
The SDK gets an ``httpx.AsyncClient`` of Elspeth's making: it then never uses its aiohttp path (which
retries a failed connection by itself after sleeping 1-10 s) and never follows a redirect.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from google import genai
from google.auth import exceptions as auth_errors
from google.genai import errors, types

from elspeth import (
    LLMConnectionError,
    LLMContentRefused,
    LLMError,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    LoopBoundSDK,
    Usage,
    connection_failure,
    error_for_status,
    redirect_refused,
)

__all__ = ["LoopBoundSDK", "SDK", "generation_config", "make_sdk", "send", "to_response", "translate_error"]

_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
_RENAMED = {"max_tokens": "max_output_tokens", "stop": "stop_sequences"}  # Elspeth's common names, the SDK's
_BLOCKING_FINISH = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"})
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_HINTS = {
    400: "check `model`, `params` and the API key in `api_key_env`",
    401: "the credentials were refused: check `access_token_env`, `credentials_file` or the ADC",
    403: "the key or account may not use this model or project",
    404: "no such model or path: check `model`, `project`, `location` and `base_url`",
}


class SDK:
    """A ``genai.Client`` and the ``httpx`` client it sends through (closed together)."""

    def __init__(self, client: Any, http: httpx.AsyncClient) -> None:
        self.client = client
        self.http = http

    async def aclose(self) -> None:
        """Close both."""
        await self.http.aclose()
        self.client.close()


def _credentials(options: Any, token: str | None) -> Any:
    if token is not None:
        from google.oauth2.credentials import Credentials

        return Credentials(token=token)  # type: ignore[no-untyped-call,unused-ignore]
    if options.credentials_file is not None:
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call,unused-ignore]
            options.credentials_file, scopes=_SCOPES
        )
    return None  # the SDK finds application default credentials on the first call


def make_sdk(options: Any, secret: str | None) -> SDK:
    """The SDK for the running loop: ``httpx`` without redirects or retries, and the chosen backend."""
    size = options.max_connections
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        timeout=options.timeout,
        follow_redirects=False,
    )
    http_options = types.HttpOptions(
        base_url=options.base_url,
        api_version=options.api_version,
        timeout=round(options.timeout * 1000),
        httpx_async_client=http,
    )
    if options.vertexai:
        client = genai.Client(
            vertexai=True,
            project=options.project,
            location=options.location,
            credentials=_credentials(options, secret),
            http_options=http_options,
        )
    else:
        client = genai.Client(vertexai=False, api_key=secret, http_options=http_options)
    return SDK(client, http)


def generation_config(options: Any, request: LLMRequest, where: str) -> types.GenerateContentConfig:
    """The ``GenerateContentConfig``: the options' settings, then ``params``, then the request's own params.

    ``max_tokens`` and ``stop`` (in ``params`` or a request's params) are the SDK's
    ``max_output_tokens`` and ``stop_sequences``; an unknown field is rejected before any call.
    """
    config: dict[str, Any] = {}
    for field, name in (("max_tokens", "max_output_tokens"), ("temperature", "temperature"), ("top_p", "top_p")):
        if getattr(options, field) is not None:
            config[name] = getattr(options, field)
    if options.stop:
        config["stop_sequences"] = list(options.stop)
    if options.json_schema is not None:
        config["response_mime_type"] = "application/json"
        config["response_json_schema"] = options.json_schema
    if options.safety_settings:
        config["safety_settings"] = [{"category": c, "threshold": t} for c, t in options.safety_settings.items()]
    for params in (options.params, request.params):
        config.update({_RENAMED.get(k, k): v for k, v in params.items()})
    if request.system:
        config["system_instruction"] = request.system
    try:
        return types.GenerateContentConfig.model_validate(config)
    except ValueError as exc:
        raise LLMRequestRejected(f"{where}: the generation config is not valid: {exc} (check `params`)") from exc


def to_response(reply: Any, model: str, where: str) -> LLMResponse:
    """An :class:`~elspeth.LLMResponse` from a ``GenerateContentResponse``; a safety block is a refusal."""
    feedback = getattr(reply, "prompt_feedback", None)
    blocked = getattr(feedback, "block_reason", None)
    if blocked:
        raise LLMContentRefused(f"{where}: the prompt was blocked (blockReason: {getattr(blocked, 'value', blocked)})")
    candidates = getattr(reply, "candidates", None) or []
    if not candidates:
        raise LLMServerError(f"{where}: the reply has no candidates")
    finish = getattr(candidates[0].finish_reason, "value", candidates[0].finish_reason)
    if finish in _BLOCKING_FINISH:
        raise LLMContentRefused(f"{where}: the reply was blocked (finishReason: {finish})")
    parts = getattr(candidates[0].content, "parts", None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    usage = reply.usage_metadata
    thoughts = (usage.thoughts_token_count or 0) if usage is not None else 0
    return LLMResponse(
        content=text,
        usage=Usage(
            prompt_tokens=(usage.prompt_token_count or 0) if usage is not None else 0,
            completion_tokens=((usage.candidates_token_count or 0) if usage is not None else 0) + thoughts,
            cached_tokens=(usage.cached_content_token_count or 0) if usage is not None else 0,
        ),
        model=reply.model_version or model,
        raw=reply,
    )


def _retry_delay(details: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``retryDelay: "1.5s"``), as Google sends a 429's wait."""
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error.get("details") if isinstance(error, dict) else None) or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DELAY.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _api_error(exc: errors.APIError, where: str) -> LLMError:
    status = int(exc.code or 0)
    response = getattr(exc, "response", None)
    headers = dict(getattr(response, "headers", None) or {})
    if 300 <= status < 400:
        return redirect_refused(where, status, headers.get("location"))
    delay = _retry_delay(exc.details)
    if delay is not None:
        headers["retry-after"] = f"{delay:g}"
    text = f"{where}: HTTP {status} {exc.status or ''}: {exc.message or exc}".replace("  ", " ")
    return error_for_status(text, status, headers, hint=_HINTS.get(status))


def translate_error(exc: BaseException, where: str) -> LLMError | None:
    """The :mod:`elspeth.llm_errors` exception for an SDK failure, or None if it is not one."""
    if isinstance(exc, errors.APIError):
        return _api_error(exc, where)
    if isinstance(exc, httpx.TimeoutException) and connection_failure(exc) is None:
        return LLMTimeout(f"{where}: no answer within the client's `timeout`")
    if isinstance(exc, httpx.TransportError | auth_errors.TransportError):
        reason = connection_failure(exc) or f"connection failed: {type(exc).__name__}: {exc}".rstrip(": ")
        return LLMConnectionError(f"{where}: {reason}")
    if isinstance(exc, auth_errors.GoogleAuthError):
        return LLMRequestRejected(
            f"{where}: no usable Google credentials: {exc} (set `access_token_env` or `credentials_file`, or "
            "`gcloud auth application-default login`)"
        )
    if isinstance(exc, ValueError):
        return LLMServerError(f"{where}: the server sent a reply that is not a generateContent reply: {exc}")
    return None


async def send(sdk: SDK, model: str, user: str, config: types.GenerateContentConfig, where: str) -> LLMResponse:
    """Send one ``generateContent`` call and translate the outcome (a redirect is refused, never followed)."""
    contents = [types.Content(role="user", parts=[types.Part(text=user)])]
    try:
        reply = await sdk.client.aio.models.generate_content(model=model, contents=contents, config=config)
    except Exception as exc:
        translated = translate_error(exc, where)
        if translated is None:
            raise
        raise translated from exc
    return to_response(reply, model, where)
