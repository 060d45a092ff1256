"""How an LLM client says what went wrong, so that one retry layer can decide what to retry.

Clients translate their SDK's exceptions into these. The pipeline retries those whose
``retryable`` is true (429, 5xx, timeouts, dropped connections), honouring ``retry_after``, and
never retries the rest (400, 401, 403, content-policy refusals, anything unknown).

Example::

    try:
        reply = await sdk.chat(...)
    except sdk.RateLimitError as exc:
        raise LLMRateLimited(str(exc), status=429, retry_after=parse_retry_after(exc.headers)) from exc
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LLMCallFailed",
    "LLMConnectionError",
    "LLMContentRefused",
    "LLMError",
    "LLMRateLimited",
    "LLMRedirectRefused",
    "LLMRequestRejected",
    "LLMServerError",
    "LLMTimeout",
    "connection_failure",
    "error_for_status",
    "parse_retry_after",
    "redirect_refused",
]


class LLMError(Exception):
    """A failed LLM call.

    Attributes:
        retryable: whether the same call may succeed if sent again.
        status: the HTTP status, if there was one.
        retry_after: seconds the server asked the caller to wait, if it said.
    """

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class LLMRateLimited(LLMError):
    """429: too many requests or tokens; retried after ``retry_after`` (or the backoff)."""

    retryable = True


class LLMServerError(LLMError):
    """5xx: the service failed; retried."""

    retryable = True


class LLMTimeout(LLMError):
    """No answer within the per-call timeout; retried."""

    retryable = True


class LLMConnectionError(LLMError):
    """No connection: refused, reset or dropped, or the host name did not resolve; retried.

    Clients raise it whatever their transport reports (an SDK may wrap a refused connection in its
    timeout error): :func:`connection_failure` finds the cause.
    """

    retryable = True


def connection_failure(exc: BaseException) -> str | None:
    """What went wrong, when ``exc`` (or anything in its chain of causes) is a failure to connect, else None.

    ``"connection refused"``, ``"connection reset by the server"``, ``"DNS lookup failed: ..."`` or
    ``"connection failed: ..."``; a transport that reports a refused connection as a timeout is seen
    through.

    Example::

        reason = connection_failure(exc)
        if reason is not None:
            raise LLMConnectionError(f"{where}: {reason}") from exc
    """
    import socket

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, ConnectionError):
            return f"connection failed: {type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return None


class LLMRequestRejected(LLMError):
    """400, 401, 403, 404: the request itself is wrong; never retried."""


class LLMRedirectRefused(LLMRequestRejected):
    """3xx: the endpoint answered with a redirect, which is never followed and never retried.

    Following it would send the whole request (prompt, key) to an address nobody put on
    ``allowed_endpoints``. Build one with :func:`redirect_refused`.

    Attributes:
        location: the ``Location`` the endpoint named, or None if it named none.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, location: str | None = None
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.location = location


def redirect_refused(where: str, status: int, location: str | None) -> LLMRedirectRefused:
    """The error for a redirect answer: names the status, the ``Location`` and what to do.

    Example::

        if 300 <= reply.status_code < 400:
            raise redirect_refused(where, reply.status_code, reply.headers.get("location"))
    """
    target = location or "(no Location header)"
    return LLMRedirectRefused(
        f"{where}: HTTP {status} redirect to {target} refused: Elspeth never follows a redirect, which would "
        "send the request to an address that is not the configured endpoint (nor on `allowed_endpoints`); "
        "set `base_url`/`endpoint` to the address that answers",
        status=status,
        location=location,
    )


class LLMContentRefused(LLMError):
    """The provider's content policy refused the prompt or the answer; never retried."""


class LLMCallFailed(Exception):
    """A call that failed for good, with every attempt it took.

    Attributes:
        attempts: one entry per attempt: ``attempt``, ``error``, ``error_type``, ``status``,
            ``retryable``, ``duration_s`` and ``delay_s`` (the wait before the next attempt).
        cause: the last attempt's exception.
    """

    def __init__(self, message: str, attempts: list[dict[str, Any]], cause: BaseException) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.cause = cause


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) in a header mapping."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    millis = getter("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = getter("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(
    text: str, status: int, headers: Any, *, refused: bool = False, overloaded: bool = False, hint: str | None = None
) -> LLMError:
    """The error for an HTTP error reply: the one mapping of a status to retried or not, for every client.

    429 is rate-limited and 408 a timeout; 409 and 5xx are server errors; both honour ``Retry-After``
    in ``headers``, and so does a reply the provider marks as overloaded whatever its status. A reply
    the client recognised as a content-policy refusal (``refused``) is never retried; anything else is
    a rejected request, with ``hint`` (what to check) after the text.
    """
    if status == 429:
        return LLMRateLimited(text, status=status, retry_after=parse_retry_after(headers))
    if refused:
        return LLMContentRefused(text, status=status)
    if status == 408:
        return LLMTimeout(text, status=status)
    if status == 409 or status >= 500 or overloaded:
        return LLMServerError(text, status=status, retry_after=parse_retry_after(headers))
    return LLMRequestRejected(f"{text} ({hint})" if hint else text, status=status)
