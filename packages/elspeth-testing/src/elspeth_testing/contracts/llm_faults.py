"""The fault contract of an HTTP LLM client: each fault the test server injects, the error it becomes, what is retried.

Every provider client maps its SDK's failures onto :mod:`elspeth.llm_errors`; this suite checks the
mapping the same way for each of them, through the real SDK over HTTP to the LLM test server.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from elspeth import (
    LLMCallFailed,
    LLMConnectionError,
    LLMContentRefused,
    LLMError,
    LLMPipeline,
    LLMRateLimited,
    LLMRedirectRefused,
    LLMRequest,
    LLMRequestRejected,
    LLMResponse,
    LLMServerError,
    LLMTimeout,
    RetryPolicy,
)

if TYPE_CHECKING:
    from elspeth_testing.llm_server import LLMTestServer

__all__ = ["COMMON_FAULTS", "FAULT_REQUEST", "LLMFaultContract", "generate_once"]

COMMON_FAULTS: dict[str, type[LLMError]] = {
    "429:3": LLMRateLimited,
    "500": LLMServerError,
    "503": LLMServerError,
    "drop": LLMConnectionError,
    "malformed": LLMServerError,
    "400": LLMRequestRejected,
    "401": LLMRequestRejected,
    "403": LLMRequestRejected,
    "404": LLMRequestRejected,
    "content_filter": LLMContentRefused,
}
"""The faults every wire API of the test server injects, and the error each must become."""

FAULT_REQUEST = LLMRequest("Reply with a score.", "the kettle")


def generate_once(client: Any, request: LLMRequest = FAULT_REQUEST) -> Any:
    """``client.generate(request)`` on a fresh event loop, the client closed after it (as a run ends)."""

    async def once() -> Any:
        try:
            return await client.generate(request)
        finally:
            await client.aclose()

    return asyncio.run(once())


class LLMFaultContract:
    """Inherited tests: each fault's error, that the SDK never retries by itself, what the pipeline retries.

    Set ``plugin_class``, override the ``plugin_options`` fixture (options pointing at the test
    server) and the ``fault_server`` fixture (that server, configured to accept the client's
    credentials). Change ``faults`` to add the provider's own (``"529"`` for Anthropic); a fault
    ``"429:N"`` must carry ``retry_after == N`` whichever way the provider sends its wait.

    Example::

        class TestMyClientFaults(LLMFaultContract):
            plugin_class = MyClient
            faults = {**COMMON_FAULTS, "529": LLMServerError}

            @pytest.fixture
            def fault_server(self, llm_server): ...

            @pytest.fixture
            def plugin_options(self, fault_server): return {"base_url": fault_server.url, "model": "m"}
    """

    plugin_class: ClassVar[type[Any]]
    faults: ClassVar[dict[str, type[LLMError]]] = COMMON_FAULTS
    where: ClassVar[str | None] = None
    """Text every error message must hold besides the endpoint (the client's name and model, say)."""
    retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per fault of ``faults``."""
        if "fault" in metafunc.fixturenames:
            metafunc.parametrize("fault", list(self.faults))

    @pytest.fixture
    def fault_server(self) -> LLMTestServer:
        """The test server ``plugin_options`` point at."""
        pytest.fail(f"{type(self).__name__} must override the `fault_server` fixture", pytrace=False)

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        """The client's options, pointing at ``fault_server``."""
        pytest.fail(f"{type(self).__name__} must override the `plugin_options` fixture", pytrace=False)

    def client(self, options: dict[str, Any], **more: Any) -> Any:
        """A client built as a run builds it, from ``options`` and ``more``."""
        return self.plugin_class(self.plugin_class.Options.model_validate({**options, **more}))

    def test_each_fault_becomes_its_error_without_the_sdk_retrying(
        self, fault_server: LLMTestServer, plugin_options: dict[str, Any], fault: str
    ) -> None:
        """The fault is raised as its Elspeth error, naming the endpoint, after exactly one request."""
        fault_server.script([fault])
        with pytest.raises(self.faults[fault]) as caught:
            generate_once(self.client(plugin_options), FAULT_REQUEST)
        assert fault_server.url in str(caught.value), f"the error does not name the endpoint: {caught.value}"
        assert self.where is None or self.where in str(caught.value), f"{self.where!r} not in: {caught.value}"
        _, _, after = fault.partition(":")
        if after:
            assert caught.value.retry_after == float(after), "the provider's retry hint was lost"
        assert len(fault_server.requests()) == 1, "the SDK retried by itself; Elspeth's pipeline is the one retry layer"

    def test_the_pipeline_retries_only_what_may_succeed_later(
        self, fault_server: LLMTestServer, plugin_options: dict[str, Any], fault: str
    ) -> None:
        """A retryable fault is followed by a successful attempt; any other fails the call at once."""
        fault_server.script([fault.partition(":")[0] + (":0.01" if fault.startswith("429") else "")])
        pipeline = LLMPipeline(self.client(plugin_options), retry=self.retry, name="fault-contract")

        async def once() -> LLMResponse | LLMCallFailed:
            try:
                return await pipeline.call(FAULT_REQUEST)
            except LLMCallFailed as exc:
                return exc

        outcome = asyncio.run(once())
        outcomes = [r.outcome for r in fault_server.requests() if r.prompt == FAULT_REQUEST.user]
        if self.faults[fault].retryable:
            assert isinstance(outcome, LLMResponse), outcome
            assert outcomes == [fault.partition(":")[0], "ok"]
        else:
            assert isinstance(outcome, LLMCallFailed), outcome
            assert "not retryable after 1 attempt" in str(outcome)
            assert len(outcomes) == 1

    def test_a_hang_is_a_timeout_after_the_client_timeout(
        self, fault_server: LLMTestServer, plugin_options: dict[str, Any]
    ) -> None:
        """A reply that never comes is ``LLMTimeout`` once the client's ``timeout`` option has passed."""
        fault_server.script(["hang"])
        with pytest.raises(LLMTimeout):
            generate_once(self.client(plugin_options, timeout=0.5), FAULT_REQUEST)

    def test_a_redirect_is_refused_never_followed(
        self, fault_server: LLMTestServer, plugin_options: dict[str, Any]
    ) -> None:
        """A 307 is ``LLMRedirectRefused``: following it would send the prompt and key elsewhere."""
        fault_server.script(["307"])
        with pytest.raises(LLMRedirectRefused, match="307"):
            generate_once(self.client(plugin_options), FAULT_REQUEST)
        assert len(fault_server.requests()) == 1
