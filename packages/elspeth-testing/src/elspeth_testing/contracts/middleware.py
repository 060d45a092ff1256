"""The contract every LLM middleware passes."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from elspeth import (
    LLMCallFailed,
    LLMContentRefused,
    LLMPipeline,
    LLMRequest,
    LLMResponse,
    LLMServerError,
    PluginContext,
    Usage,
    invoke,
)
from elspeth_testing._samples import EchoClient, sample_request
from elspeth_testing.contracts._base import PluginContract, run_async

__all__ = ["MiddlewareContract"]


class _Refuser:
    """Middleware that refuses every request (``stage="request"``) or every answer (``stage="response"``)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def before_request(self, request: LLMRequest) -> LLMRequest:
        if self.stage == "request":
            raise LLMContentRefused("refused by another middleware (contract test)")
        return request

    def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        if self.stage == "response":
            raise LLMContentRefused("refused by another middleware (contract test)")
        return response


class MiddlewareContract(PluginContract):
    """Inherited tests for LLM middleware.

    Set ``plugin_class`` and, if needed, override ``plugin_options``. A middleware with ``open(ctx)``
    and ``close()`` is opened with ``plugin_context`` before each test and closed after, as a run
    does. Override ``llm_request`` and ``llm_response`` when the middleware should see other content
    (the defaults are benign, so a middleware that refuses them fails the contract).

    Example::

        class TestAuditLogger(MiddlewareContract):
            plugin_class = AuditLogger

            @pytest.fixture
            def plugin_options(self, tmp_path):
                return {"path": str(tmp_path / "audit.jsonl")}

    """

    domain: ClassVar[str] = "llm_middleware"
    hook: ClassVar[str] = "register_llm_middleware"

    @pytest.fixture
    def plugin(self, plugin_options: dict[str, Any], plugin_context: PluginContext) -> Iterator[Any]:
        """The middleware, built and opened as a run opens it (``open(ctx)`` before, ``close()`` after)."""
        cls = self._class()
        middleware = cls(cls.Options.model_validate(plugin_options))
        if hasattr(middleware, "open"):
            run_async(invoke(middleware.open, plugin_context))
        yield middleware
        if hasattr(middleware, "close"):
            run_async(invoke(middleware.close))

    @pytest.fixture
    def llm_request(self) -> LLMRequest:
        """The request the middleware sees."""
        return sample_request(experiment="baseline")

    @pytest.fixture
    def llm_response(self) -> LLMResponse:
        """The response the middleware sees."""
        return LLMResponse(content="The kettle boils fast.", usage=Usage(12, 6), model="echo", metrics={"score": 0.5})

    def test_has_a_hook_method(self, plugin: Any) -> None:
        """The middleware has ``before_request`` or ``after_response``."""
        assert hasattr(plugin, "before_request") or hasattr(plugin, "after_response"), (
            "middleware needs before_request(request) and/or after_response(request, response)"
        )

    def test_before_request_returns_a_request_keeping_metadata(self, plugin: Any, llm_request: LLMRequest) -> None:
        """``before_request`` returns an LLMRequest that keeps the run's metadata."""
        if not hasattr(plugin, "before_request"):
            return
        sent = copy.deepcopy(llm_request)
        out = run_async(invoke(plugin.before_request, sent))
        assert isinstance(out, LLMRequest), f"before_request must return elspeth.LLMRequest, got {out!r}"
        for key, value in llm_request.metadata.items():
            assert out.metadata.get(key) == value, f"before_request lost or changed metadata[{key!r}]"

    def test_after_response_returns_a_response(
        self, plugin: Any, llm_request: LLMRequest, llm_response: LLMResponse
    ) -> None:
        """``after_response`` returns an LLMResponse that keeps the metrics it was given."""
        if not hasattr(plugin, "after_response"):
            return
        out = run_async(invoke(plugin.after_response, llm_request, copy.deepcopy(llm_response)))
        assert isinstance(out, LLMResponse), f"after_response must return elspeth.LLMResponse, got {out!r}"
        assert isinstance(out.content, str), f"after_response gave content {out.content!r}, not str"
        assert isinstance(out.usage, Usage), "after_response must keep a Usage"
        for key, value in llm_response.metrics.items():
            assert out.metrics.get(key) == value, f"after_response lost or changed metrics[{key!r}]"

    def test_works_in_the_llm_pipeline(self, plugin: Any, llm_request: LLMRequest) -> None:
        """The middleware works in the LLM pipeline and the run's metadata reaches the client."""
        client = EchoClient()
        response = run_async(LLMPipeline(client, [plugin]).call(llm_request))
        assert isinstance(response, LLMResponse)
        assert len(client.requests) == 1, "the client was not called exactly once"
        for key, value in llm_request.metadata.items():
            assert client.requests[0].metadata.get(key) == value, f"metadata[{key!r}] did not reach the client"

    def test_many_concurrent_requests(self, plugin: Any, llm_request: LLMRequest) -> None:
        """Many requests at once all pass through, each reaching the client once."""
        client = EchoClient()
        pipeline = LLMPipeline(client, [plugin])
        requests = []
        for i in range(32):
            request = copy.deepcopy(llm_request)
            request.metadata["row_id"] = f"r{i}"
            requests.append(request)

        async def main() -> list[LLMResponse]:
            return await asyncio.gather(*(pipeline.call(r) for r in requests))

        responses = run_async(main())
        assert all(isinstance(r, LLMResponse) for r in responses)
        assert sorted(r.metadata["row_id"] for r in client.requests) == sorted(f"r{i}" for i in range(32))

    def test_outcome_hooks_take_what_the_pipeline_sends(
        self, plugin: Any, llm_request: LLMRequest, llm_response: LLMResponse
    ) -> None:
        """``on_success``, ``on_error`` and ``on_refused``, where defined, take the pipeline's arguments."""
        refusal = LLMContentRefused("refused (contract test)")
        cause = LLMServerError("down (contract test)", status=500)
        attempts = [{"attempt": 1, "error": str(cause), "error_type": "LLMServerError", "status": 500}]
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("on_success", (copy.deepcopy(llm_response),)),
            ("on_error", (LLMCallFailed(str(cause), attempts, cause),)),
            ("on_refused", (refusal, None)),
            ("on_refused", (refusal, copy.deepcopy(llm_response))),
        ]
        for name, args in calls:
            hook = getattr(plugin, name, None)
            if hook is not None:
                run_async(invoke(hook, copy.deepcopy(llm_request), *args))

    def test_a_refusal_by_other_middleware_passes_through_unchanged(self, plugin: Any, llm_request: LLMRequest) -> None:
        """When another middleware refuses the prompt or the answer, the caller gets that refusal, not another error."""
        for stage, outermost in (("request", True), ("response", True), ("response", False)):
            refuser = _Refuser(stage)
            chain = [plugin, refuser] if outermost else [refuser, plugin]
            pipeline = LLMPipeline(EchoClient(), chain)
            with pytest.raises(LLMContentRefused, match="refused by another middleware"):
                run_async(pipeline.call(copy.deepcopy(llm_request)))
