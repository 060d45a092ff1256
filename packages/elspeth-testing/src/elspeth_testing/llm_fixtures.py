"""Fixtures that start the LLM test server (:mod:`elspeth_testing.llm_server`) for a test.

Fixtures:
    llm_server: a fresh server for the test, on a free port of 127.0.0.1, stopped afterwards.
    llm_server_factory: start servers with a given configuration (``process=True`` for a child process).

Example::

    def test_retries(llm_server):
        llm_server.script(["429", "500"], match="row 1")
        ...
        assert llm_server.successes_per_prompt() == {"row 1": 1}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from elspeth_testing.llm_server import LLMTestServer, ServerConfig

__all__ = ["LLMServerFactory", "llm_server", "llm_server_factory"]


class LLMServerFactory(Protocol):
    """The ``llm_server_factory`` fixture: ``llm_server_factory(latency_ms=50, process=True)``."""

    def __call__(self, config: ServerConfig | None = None, *, process: bool = False, **fields: Any) -> LLMTestServer:
        """Start a server; it stops when the test ends."""
        ...


@pytest.fixture
def llm_server_factory() -> Iterator[LLMServerFactory]:
    """Start LLM test servers with a configuration; every one is stopped when the test ends."""
    from elspeth_testing.llm_server import LLMTestServer, ServerConfig

    started: list[LLMTestServer] = []

    def start(config: ServerConfig | None = None, *, process: bool = False, **fields: Any) -> LLMTestServer:
        cfg = ServerConfig.model_validate({**(config.model_dump() if config else {}), **fields})
        server = LLMTestServer(cfg, process=process).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def llm_server(llm_server_factory: LLMServerFactory) -> LLMTestServer:
    """An OpenAI/Azure OpenAI/Content Safety test server on 127.0.0.1 with no latency and no faults."""
    return llm_server_factory()
