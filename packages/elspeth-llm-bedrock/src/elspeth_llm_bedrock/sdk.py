"""The ``boto3`` side: the Converse request, the reply and the translation of botocore's errors.

Imported only on a client's first call, so ``elspeth plugins list`` never imports ``boto3``.
boto3 is synchronous: each call runs on the client's own thread pool (as large as its connection
pool), so ``concurrency`` calls can be in flight at once, not the default executor's handful.
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]  # typed only with boto3-stubs
import botocore.config  # type: ignore[import-untyped,unused-ignore]
import botocore.exceptions  # type: ignore[import-untyped,unused-ignore]

from elspeth import (
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
    register_secret,
)

__all__ = ["Runtime", "converse_body", "to_response", "translate_error"]

# Bedrock's exceptions that may succeed later whatever status they came with
_RETRIED = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalServerException", "ModelNotReadyException"}
)
_TIMED_OUT = frozenset({"ModelTimeoutException"})
_HINTS = {
    "AccessDeniedException": "the credentials may not invoke this model: check the IAM policy and model access",
    "UnrecognizedClientException": "the AWS credentials were refused: check the chain (AWS_ACCESS_KEY_ID, profile)",
    "ResourceNotFoundException": "no such model in this region: check `model` and `region`",
    "ValidationException": "the request does not fit the model: check `model`, `max_tokens` and `params`",
}
_INFERENCE = {
    "temperature": "temperature",
    "max_tokens": "maxTokens",
    "maxTokens": "maxTokens",
    "top_p": "topP",
    "topP": "topP",
    "stop": "stopSequences",
    "stopSequences": "stopSequences",
}
_REFUSED_STOPS = frozenset({"guardrail_intervened", "content_filtered"})


def _merge(body: dict[str, Any], inference: dict[str, Any], params: dict[str, Any]) -> None:
    for key, value in params.items():
        if key in _INFERENCE:
            inference[_INFERENCE[key]] = list(value) if key in {"stop", "stopSequences"} else value
        else:
            body[key] = value


def converse_body(options: Any, request: LLMRequest) -> dict[str, Any]:
    """The Converse call's arguments: the options' settings, then ``params``, then the request's own params.

    Sampling parameters (``temperature``, ``max_tokens``, ``top_p``, ``stop`` or their Converse
    names) go into ``inferenceConfig``; any other key is a Converse field of its own.
    """
    body: dict[str, Any] = {"modelId": options.model}
    inference: dict[str, Any] = {}
    for field, name in (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP")):
        if getattr(options, field) is not None:
            inference[name] = getattr(options, field)
    if options.stop:
        inference["stopSequences"] = list(options.stop)
    if options.json_schema is not None:
        schema = {"jsonSchema": {"schema": json.dumps(options.json_schema), "name": "reply"}}
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": schema}}
    _merge(body, inference, options.params)
    _merge(body, inference, request.params)
    if inference:
        body["inferenceConfig"] = {**body.get("inferenceConfig", {}), **inference}
    if request.system:
        system: list[dict[str, Any]] = [{"text": request.system}]
        if options.cache_system:
            system.append({"cachePoint": {"type": "default"}})
        body["system"] = system
    body["messages"] = [{"role": "user", "content": [{"text": request.user}]}]
    return body


def to_response(reply: dict[str, Any], model: str, where: str) -> LLMResponse:
    """An :class:`~elspeth.LLMResponse` from a Converse reply; a guardrail's or filter's stop is a refusal."""
    stop = reply.get("stopReason")
    if stop in _REFUSED_STOPS:
        raise LLMContentRefused(f"{where}: the reply was blocked (stopReason: {stop})")
    blocks = ((reply.get("output") or {}).get("message") or {}).get("content")
    if not isinstance(blocks, list):
        raise LLMServerError(f"{where}: the reply has no output message")
    text = "".join(str(b["text"]) for b in blocks if isinstance(b, dict) and "text" in b)
    usage = reply.get("usage") or {}
    read = int(usage.get("cacheReadInputTokens") or 0)
    written = int(usage.get("cacheWriteInputTokens") or 0)
    return LLMResponse(
        content=text,
        usage=Usage(
            prompt_tokens=int(usage.get("inputTokens") or 0) + read + written,
            completion_tokens=int(usage.get("outputTokens") or 0),
            cached_tokens=read,
        ),
        model=model,
        raw=reply,
    )


def _client_error(exc: botocore.exceptions.ClientError, where: str) -> LLMError:
    error = exc.response.get("Error") or {}
    meta = exc.response.get("ResponseMetadata") or {}
    status = int(meta.get("HTTPStatusCode") or 0)
    headers = meta.get("HTTPHeaders") or {}
    code = str(error.get("Code") or "")
    if 300 <= status < 400:
        return redirect_refused(where, status, headers.get("location"))
    text = f"{where}: HTTP {status} {code}: {error.get('Message') or exc}"
    if code in _TIMED_OUT:
        return LLMTimeout(text, status=status)
    return error_for_status(text, status, headers, overloaded=code in _RETRIED, hint=_HINTS.get(code))


def translate_error(exc: BaseException, where: str) -> LLMError | None:
    """The :mod:`elspeth.llm_errors` exception for a botocore failure, or None if it is not one."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc, where)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return LLMRequestRejected(
            f"{where}: {exc}: the standard AWS chain found no usable credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, `profile`, SSO or an instance role)"
        )
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return LLMRequestRejected(f"{where}: the Converse request is not valid: {exc} (check `params`)")
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return LLMTimeout(f"{where}: no answer within the client's `timeout`")
    if isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.EndpointConnectionError):
        reason = connection_failure(exc) or f"connection failed: {type(exc).__name__}: {exc}"
        return LLMConnectionError(f"{where}: {reason}")
    if isinstance(exc, botocore.exceptions.ResponseParserError | ValueError):
        return LLMServerError(f"{where}: the server sent a reply that is not a Converse reply: {exc}")
    return None


class Runtime:
    """One ``bedrock-runtime`` client (thread-safe, as boto3's clients are) and the threads that call it."""

    def __init__(self, options: Any, region: str, where: str) -> None:
        config = botocore.config.Config(
            region_name=region,
            connect_timeout=options.timeout,
            read_timeout=options.timeout,
            max_pool_connections=options.max_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},  # Elspeth's pipeline is the one retry layer
        )
        try:
            session = boto3.session.Session(profile_name=options.profile, region_name=region)
            credentials = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            raise LLMRequestRejected(f"{where}: {exc} (option `profile`, or AWS_PROFILE)") from exc
        if credentials is not None:  # none is reported by the call, as botocore's NoCredentialsError
            frozen = credentials.get_frozen_credentials()
            register_secret(frozen.secret_key, "AWS secret access key")
            register_secret(frozen.token, "AWS session token")
        self.model = options.model
        self.where = where
        self.client = session.client("bedrock-runtime", endpoint_url=options.endpoint_url, config=config)
        self.executor = ThreadPoolExecutor(max_workers=options.max_connections, thread_name_prefix="elspeth-bedrock")

    async def converse(self, body: dict[str, Any]) -> LLMResponse:
        """Send one Converse request on the pool and translate the outcome (a redirect is refused, never followed)."""
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(self.executor, functools.partial(self.client.converse, **body))
        except Exception as exc:
            translated = translate_error(exc, self.where)
            if translated is None:
                raise
            raise translated from exc
        return to_response(reply, self.model, self.where)

    def close(self) -> None:
        """Stop taking calls (those in flight finish) and close the connection pool."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
