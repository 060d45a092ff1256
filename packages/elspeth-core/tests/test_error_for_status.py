"""error_for_status: one mapping of an HTTP error reply to what the retry layer does with it."""

from __future__ import annotations

import pytest

from elspeth import (
    LLMContentRefused,
    LLMRateLimited,
    LLMRequestRejected,
    LLMServerError,
    LLMTimeout,
    error_for_status,
)

HEADERS = {"retry-after": "3"}


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, LLMRateLimited, True),
        (408, LLMTimeout, True),
        (409, LLMServerError, True),
        (500, LLMServerError, True),
        (529, LLMServerError, True),
        (400, LLMRequestRejected, False),
        (401, LLMRequestRejected, False),
        (404, LLMRequestRejected, False),
    ],
)
def test_each_status_maps_to_one_error(status: int, kind: type, retryable: bool) -> None:
    error = error_for_status("x: HTTP", status, HEADERS)
    assert type(error) is kind
    assert error.status == status
    assert error.retryable is retryable


def test_rate_limits_and_server_errors_carry_retry_after() -> None:
    assert error_for_status("t", 429, HEADERS).retry_after == 3.0
    assert error_for_status("t", 503, HEADERS).retry_after == 3.0


def test_a_refusal_is_never_retried_but_a_429_stays_a_rate_limit() -> None:
    assert type(error_for_status("t", 400, {}, refused=True)) is LLMContentRefused
    assert type(error_for_status("t", 429, {}, refused=True)) is LLMRateLimited


def test_overloaded_is_a_server_error_whatever_its_status() -> None:
    error = error_for_status("t", 400, HEADERS, overloaded=True)
    assert type(error) is LLMServerError
    assert error.retry_after == 3.0


def test_a_rejection_carries_its_hint() -> None:
    assert str(error_for_status("t: HTTP 401", 401, {}, hint="check the key")) == "t: HTTP 401 (check the key)"
    assert str(error_for_status("t: HTTP 401", 401, {})) == "t: HTTP 401"
