"""Connection refused, reset and DNS failure are LLMConnectionError on every transport (issue 12, point 4)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from elspeth import LLMConnectionError, LLMRequest, connection_failure
from elspeth.llm_errors import LLMTimeout
from elspeth_llm_openai import OpenAIClient
from elspeth_llm_openai.sdk import translate_error

KEY_ENV = "ELSPETH_TEST_CONNECTION_KEY"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A server on 127.0.0.1 that reads the request, then resets the connection (RST, no reply)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


def call(port: int, transport: str) -> BaseException:
    options = {"model": "m", "base_url": f"http://127.0.0.1:{port}/v1", "api_key_env": KEY_ENV, "timeout": 5}
    client = OpenAIClient(OpenAIClient.Options.model_validate({**options, "transport": transport}))

    async def main() -> BaseException:
        try:
            await client.generate(LLMRequest("s", "u"))
        except Exception as exc:  # the test inspects what the client raised
            return exc
        finally:
            await client.aclose()
        raise AssertionError("the call succeeded")

    return asyncio.run(main())


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_connection_refused_is_a_connection_error_not_a_timeout(transport: str) -> None:
    port = closed_port()
    error = call(port, transport)
    assert isinstance(error, LLMConnectionError), repr(error)
    assert not isinstance(error, LLMTimeout)
    assert str(error) == f"openai m at http://127.0.0.1:{port}/v1: connection refused"
    assert error.retryable


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_reset_connection_is_a_connection_error(transport: str, resetting_port: int) -> None:
    error = call(resetting_port, transport)
    assert isinstance(error, LLMConnectionError), repr(error)
    assert str(error).startswith(f"openai m at http://127.0.0.1:{resetting_port}/v1: connection ")
    assert error.retryable


@pytest.mark.parametrize("wrapper", [openai.APITimeoutError, openai.APIConnectionError])
def test_a_dns_failure_is_a_connection_error_however_the_sdk_wraps_it(wrapper: Any) -> None:
    # built as the aiohttp transport builds it (no lookup is made: tests talk to 127.0.0.1 only)
    request = httpx.Request("POST", "http://no-such-host.example/v1/chat/completions")
    connector = OSError("Cannot connect to host no-such-host.example:80")
    connector.__cause__ = socket.gaierror(-2, "Name or service not known")
    sdk_error = wrapper(request=request)
    sdk_error.__cause__ = connector
    error = translate_error(sdk_error, "openai m at http://no-such-host.example/v1")
    assert isinstance(error, LLMConnectionError)
    assert str(error) == "openai m at http://no-such-host.example/v1: DNS lookup failed: Name or service not known"


def test_a_real_timeout_stays_a_timeout() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1")
    timeout = openai.APITimeoutError(request=request)
    timeout.__cause__ = TimeoutError()
    assert isinstance(translate_error(timeout, "x"), LLMTimeout)
    assert connection_failure(ValueError("no")) is None
