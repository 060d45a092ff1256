"""The process's secrets and the one scrub: registered values never survive into recorded text."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from elspeth import (
    LLMPipeline,
    LLMRequest,
    LLMResponse,
    register_secret,
    scrub_exception,
    scrub_secrets,
    secret_from_env,
)
from elspeth.llm_errors import LLMCallFailed, LLMRequestRejected, LLMServerError
from elspeth.orchestration.retry import RetryPolicy
from elspeth.scrub import MIN_LENGTH, Secrets, SecretsFilter, install_log_scrubbing

KEY = "sk-scrub-test-5d1e9f0a3c"


def test_a_registered_value_and_its_encodings_are_replaced_by_its_name() -> None:
    secrets = Secrets()
    secrets.register("a+b/c=d&e-secret", "MY_KEY")
    assert secrets.scrub("x a+b/c=d&e-secret y") == "x <redacted:MY_KEY> y"
    assert secrets.scrub("?k=a%2Bb%2Fc%3Dd%26e-secret") == "?k=<redacted:MY_KEY>"
    assert secrets.scrub("a%2Bb%2Fc%3Dd%26e-secret".replace("%2F", "%2F")) == "<redacted:MY_KEY>"
    assert secrets.names() == ["MY_KEY"]


def test_the_secret_parts_of_a_connection_string_are_secrets_on_their_own() -> None:
    secrets = Secrets()
    secrets.register(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=QUJDREVGR0g=;EndpointSuffix=core.windows.net",
        "CONN",
    )
    secrets.register("sv=2024-01-01&sig=c2lnbmF0dXJlMTIz&se=2030", "SAS")
    assert secrets.scrub("auth failed for key QUJDREVGR0g=") == "auth failed for key <redacted:CONN>"
    assert secrets.scrub("GET /c/b?sig=c2lnbmF0dXJlMTIz") == "GET /c/b?sig=<redacted:SAS>"
    assert "acct" in secrets.scrub("account acct")  # the account name is not secret


def test_short_values_are_not_registered_and_the_longest_value_wins() -> None:
    secrets = Secrets()
    secrets.register("x" * (MIN_LENGTH - 1), "SHORT")
    secrets.register("abcdefgh", "INNER")
    secrets.register("abcdefgh-and-more", "OUTER")
    assert secrets.scrub("x" * (MIN_LENGTH - 1)) == "x" * (MIN_LENGTH - 1)
    assert secrets.scrub("abcdefgh-and-more / abcdefgh") == "<redacted:OUTER> / <redacted:INNER>"


def test_secret_from_env_registers_the_value_and_returns_none_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRUB_TEST_KEY", KEY)
    monkeypatch.delenv("SCRUB_TEST_UNSET", raising=False)
    assert secret_from_env("SCRUB_TEST_KEY") == KEY
    assert secret_from_env("SCRUB_TEST_UNSET") is None
    assert secret_from_env("ANY", {"ANY": ""}) is None
    assert scrub_secrets(f"Incorrect API key provided: Bearer {KEY}") == (
        "Incorrect API key provided: Bearer <redacted:SCRUB_TEST_KEY>"
    )


def raised_with_cause() -> LLMRequestRejected:
    try:
        try:
            raise ValueError(f"sdk said {KEY}")
        except ValueError as inner:
            outer = LLMRequestRejected(f"HTTP 401: {KEY}", status=401)
            outer.body = {"error": {"message": KEY}}  # type: ignore[attr-defined]
            raise outer from inner
    except LLMRequestRejected as caught:
        return caught
    raise AssertionError("unreachable")


def test_scrub_exception_cleans_the_whole_chain_in_place() -> None:
    register_secret(KEY, "SCRUB_TEST_KEY")
    caught = raised_with_cause()
    assert scrub_exception(caught) is caught
    assert KEY not in str(caught)
    assert KEY not in str(caught.__cause__)
    assert caught.body == {"error": {"message": "<redacted:SCRUB_TEST_KEY>"}}  # type: ignore[attr-defined]
    assert caught.status == 401


class EchoingClient:
    """A client whose service echoes the key: in a 500, then in a reply."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if self.calls == 1:
            raise LLMServerError(f"HTTP 500: upstream rejected Bearer {KEY}", status=500)
        return LLMResponse(content=f"Score: 0.5 (key {KEY})", model=f"m-{KEY}", metrics={"note": KEY})


def test_the_pipeline_scrubs_every_attempt_error_and_the_reply() -> None:
    register_secret(KEY, "SCRUB_TEST_KEY")
    pipeline = LLMPipeline(EchoingClient(), retry=RetryPolicy(max_attempts=2, initial_delay_s=0, timeout_s=5))
    response = asyncio.run(pipeline.call(LLMRequest("s", "u")))
    assert response.content == "Score: 0.5 (key <redacted:SCRUB_TEST_KEY>)"
    assert response.model == "m-<redacted:SCRUB_TEST_KEY>"
    assert response.metrics["note"] == "<redacted:SCRUB_TEST_KEY>"

    failing = LLMPipeline(EchoingClient(), retry=RetryPolicy(max_attempts=1, timeout_s=5))
    with pytest.raises(LLMCallFailed) as caught:
        asyncio.run(failing.call(LLMRequest("s", "u")))
    assert KEY not in str(caught.value)
    assert KEY not in str(caught.value.cause)
    assert caught.value.attempts[0]["error"] == "HTTP 500: upstream rejected Bearer <redacted:SCRUB_TEST_KEY>"


class RefusingMiddleware:
    def before_request(self, request: LLMRequest) -> LLMRequest:
        raise LLMRequestRejected(f"screening service said: key {KEY} is wrong")


def test_a_middleware_services_error_is_scrubbed_before_anyone_sees_it() -> None:
    register_secret(KEY, "SCRUB_TEST_KEY")
    seen: list[str] = []

    class Watcher:
        def on_refused(self, request: LLMRequest, error: Exception, response: object) -> None:
            seen.append(str(error))

    pipeline = LLMPipeline(EchoingClient(), [RefusingMiddleware(), Watcher()])
    with pytest.raises(LLMRequestRejected) as caught:
        asyncio.run(pipeline.call(LLMRequest("s", "u")))
    assert KEY not in str(caught.value)
    assert seen == ["screening service said: key <redacted:SCRUB_TEST_KEY> is wrong"]


def test_the_log_filter_scrubs_records_of_every_logger_through_a_handler() -> None:
    register_secret(KEY, "SCRUB_TEST_KEY")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("scrub-test-root")
    logger.addHandler(handler)
    logger.propagate = False
    child = logging.getLogger("scrub-test-root.elspeth.child")
    try:
        install_log_scrubbing(logger)
        install_log_scrubbing(logger)  # idempotent
        assert sum(isinstance(f, SecretsFilter) for f in handler.filters) == 1
        child.warning("service said %s", f"Bearer {KEY}")
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            child.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "service said Bearer <redacted:SCRUB_TEST_KEY>" in text
    assert "boom <redacted:SCRUB_TEST_KEY>" in text
    assert KEY not in text


def test_the_log_filter_never_raises_on_a_record_whose_arguments_do_not_fit() -> None:
    register_secret(KEY, "SCRUB_TEST_KEY")
    record = logging.LogRecord("elspeth.x", logging.WARNING, __file__, 1, "%s and %s", (KEY,), None)
    assert SecretsFilter().filter(record) is True
    assert KEY not in str(record.msg)
    assert "<redacted:SCRUB_TEST_KEY>" in str(record.msg)


def test_registering_a_secret_puts_the_filter_on_the_handlers_already_there() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        register_secret("late-secret-0123456789", "LATE_VAR")
        logging.getLogger("elspeth.somewhere").warning("echoed late-secret-0123456789")
    finally:
        root.removeHandler(handler)
    assert any(isinstance(f, SecretsFilter) for f in handler.filters)
    assert "echoed <redacted:LATE_VAR>" in stream.getvalue()
