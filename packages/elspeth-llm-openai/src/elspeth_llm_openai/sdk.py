"""The ``openai`` SDK side: one SDK client per event loop, request building, reply and error translation.

Public for every client built on the ``openai`` SDK (``elspeth-llm-azure`` uses it: Azure OpenAI is the
same SDK), so the translation of the SDK's errors into ``elspeth.llm_errors`` exists once. Imported only
when a client makes its first call, so ``elspeth plugins list`` never imports ``openai``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import openai

from elspeth import (
    ConfigError,
    LLMConnectionError,
    LLMContentRefused,
    LLMError,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    Usage,
    connection_failure,
    error_for_status,
    redirect_refused,
)
from elspeth_llm_openai.loop import LoopBoundSDK

__all__ = [
    "LoopBoundSDK",
    "build_http_client",
    "call_chat",
    "chat_body",
    "to_response",
    "translate_error",
]

_REJECTED_HINT = {
    401: "the API key was refused; check the environment variable named by `api_key_env`",
    403: "the key may not use this model or endpoint",
    404: "no such model, deployment or path; check `model`/`deployment` and `base_url`/`endpoint`",
}


def _limits(max_connections: int) -> Any:
    # openai 1.x builds on httpx, later releases on httpx2; use the Limits of whichever the SDK's client uses
    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    http = sys.modules[base.__module__.split(".")[0]]
    return http.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)


def build_http_client(transport: str, max_connections: int, timeout: float) -> Any:
    """The SDK's HTTP client: its aiohttp transport or its default httpx one, with a pool of ``max_connections``.

    The keep-alive pool is as large as the connection limit, so that at full concurrency no
    connection is closed after its request only to be opened again for the next one. Redirects are
    never followed (the SDK's clients follow them by default): a 3xx becomes
    :class:`~elspeth.llm_errors.LLMRedirectRefused` instead of a second request, carrying the prompt, to
    wherever the ``Location`` points.
    """
    limits = _limits(max_connections)
    if transport == "aiohttp":
        aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)
        if aiohttp_client is None:
            raise ConfigError(
                f"transport: aiohttp needs an openai release with DefaultAioHttpClient (installed: "
                f"{openai.__version__}); upgrade with `pip install -U 'openai[aiohttp]'` or set `transport: httpx`"
            )
        return aiohttp_client(limits=limits, timeout=timeout, follow_redirects=False)
    return openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout, follow_redirects=False)


def chat_body(base: Mapping[str, Any], request: LLMRequest, extra_body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one chat completion: ``extra_body``, the client's settings, then the request's params.

    Unset (None) settings are left out so the server's defaults apply; any parameter passes
    through, so an OpenAI-compatible server's own (``top_k``, ``repetition_penalty``, ...) work too.
    """
    body = dict(extra_body)
    for key, value in {**base, **request.params}.items():
        if value is not None:
            body[key] = value
    messages = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append({"role": "user", "content": request.user})
    body["messages"] = messages
    return body


def to_response(completion: Any, where: str) -> LLMResponse:
    """An :class:`~elspeth.LLMResponse` from the SDK's ``ChatCompletion``."""
    if not completion.choices:
        raise LLMServerError(f"{where}: the reply has no choices")
    choice = completion.choices[0]
    message = choice.message
    if choice.finish_reason == "content_filter":
        raise LLMContentRefused(f"{where}: the reply was withheld by the provider's content filter")
    refusal = getattr(message, "refusal", None)
    if refusal:
        raise LLMContentRefused(f"{where}: the model refused: {refusal}")
    usage = completion.usage
    cached = 0
    details = getattr(usage, "prompt_tokens_details", None) if usage is not None else None
    if details is not None:
        cached = getattr(details, "cached_tokens", 0) or 0
    return LLMResponse(
        content=message.content or "",
        usage=Usage(
            prompt_tokens=(usage.prompt_tokens or 0) if usage is not None else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage is not None else 0,
            cached_tokens=cached,
        ),
        model=completion.model,
        raw=completion,
    )


def _server_message(exc: Any) -> tuple[str, str | None]:
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or exc), (str(error["code"]) if error.get("code") is not None else None)
    return str(getattr(exc, "message", exc)), getattr(exc, "code", None)


def translate_error(exc: BaseException, where: str) -> LLMError | None:
    """The :mod:`elspeth.llm_errors` exception for an SDK failure, or None if it is not one.

    Args:
        exc: what the SDK raised.
        where: names the client and endpoint in the message, e.g. ``openai gpt-4o at https://...``.

    """
    if isinstance(exc, openai.APIConnectionError) and (reason := connection_failure(exc)) is not None:
        return LLMConnectionError(f"{where}: {reason}")  # the aiohttp transport calls a refused connection a timeout
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout(f"{where}: no answer within the client's `timeout`")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return LLMConnectionError(f"{where}: connection failed: {type(cause).__name__}: {cause}".rstrip(": "))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message, code = _server_message(exc)
        text = f"{where}: HTTP {status}: {message}"
        quota = code == "insufficient_quota"
        hint = "the account's quota is used up; retrying will not help" if quota else _REJECTED_HINT.get(status)
        if quota and status == 429:  # a 429 that waiting will not cure
            return LLMRequestRejected(f"{text} ({hint})", status=status)
        refused = "content_filter" in str(code or "")
        return error_for_status(text, status, exc.response.headers, refused=refused, hint=hint)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return LLMServerError(f"{where}: the server sent a reply that is not a valid chat completion: {exc}")
    return None


async def send(
    sdk: Any, base: Mapping[str, Any], request: LLMRequest, extra_body: Mapping[str, Any], where: str
) -> LLMResponse:
    """Send ``request`` with the client's options ``base``, its ``params`` overriding them for this call."""
    from elspeth_llm_openai.client import check_response_format

    params = request.params
    if "response_format" in params:
        params = {**params, "response_format": check_response_format(params["response_format"])}
        request = LLMRequest(request.system, request.user, params, request.metadata)
    return await call_chat(sdk, chat_body(base, request, extra_body), where)


async def call_chat(sdk: Any, body: dict[str, Any], where: str) -> LLMResponse:
    """Send one chat completion and translate the outcome.

    The body goes through the SDK's generic ``post`` (its documented way to send a request it does
    not type) rather than ``chat.completions.create``: the same client, transport, headers, error
    classes and reply model, without re-validating a body that is already plain JSON. On a 2-core
    machine that halves the SDK's CPU time per call, which is what bounds throughput (see the README).
    A per-call ``timeout`` in the request's params becomes the request's timeout, not a body field.
    """
    from openai.types.chat import ChatCompletion

    options: dict[str, Any] = {}
    if "timeout" in body:
        options["timeout"] = body.pop("timeout")
    try:
        completion = await sdk.post("/chat/completions", body=body, cast_to=ChatCompletion, options=options)
    except Exception as exc:  # only the SDK's own failures are translated; anything else propagates
        if isinstance(exc, openai.APIStatusError) and 300 <= exc.status_code < 400:
            raise redirect_refused(where, exc.status_code, exc.response.headers.get("location")) from exc
        translated = translate_error(exc, where)
        if translated is None:
            raise
        raise translated from exc
    return to_response(completion, where)
