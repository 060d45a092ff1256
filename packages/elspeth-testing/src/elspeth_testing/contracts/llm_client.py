"""The contract every LLM client passes."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, PluginContext, Usage, invoke
from elspeth_testing._samples import sample_request
from elspeth_testing.contracts._base import PluginContract, run_async

__all__ = ["LLMClientContract"]


def check_response(response: Any) -> LLMResponse:
    """Assert that ``response`` is a well-formed :class:`~elspeth.LLMResponse` and return it."""
    assert isinstance(response, LLMResponse), f"generate() must return elspeth.LLMResponse, got {response!r}"
    assert isinstance(response.content, str), f"LLMResponse.content must be str, got {response.content!r}"
    assert isinstance(response.usage, Usage), f"LLMResponse.usage must be elspeth.Usage, got {response.usage!r}"
    for field in ("prompt_tokens", "completion_tokens", "cached_tokens"):
        value = getattr(response.usage, field)
        assert isinstance(value, int), f"usage.{field} must be an int, got {value!r}"
        assert value >= 0, f"usage.{field} must not be negative, got {value}"
    assert response.model is None or isinstance(response.model, str), f"model must be str or None: {response.model!r}"
    assert isinstance(response.metrics, dict), f"metrics must be a dict, got {response.metrics!r}"
    return response


class LLMClientContract(PluginContract):
    """Inherited tests for an LLM client.

    Set ``plugin_class`` and override ``plugin_options`` to point the client at something that
    answers: for an HTTP client, a server on 127.0.0.1. Override ``llm_request`` to change the prompt.

    Example::

        class TestMyClient(LLMClientContract):
            plugin_class = MyClient

            @pytest.fixture
            def plugin_options(self, llm_server):  # the LLM test server, on 127.0.0.1
                return {"base_url": llm_server.openai_base_url, "model": "test"}

    """

    domain: ClassVar[str] = "llm_client"
    hook: ClassVar[str] = "register_llm_clients"
    concurrent_calls: ClassVar[int] = 32
    """How many calls :meth:`test_many_concurrent_calls_all_answer` makes at once."""

    @pytest.fixture
    def llm_request(self) -> LLMRequest:
        """The request the contract sends."""
        return sample_request()

    def test_returns_an_llm_response(self, plugin: Any, llm_request: LLMRequest) -> None:
        """``generate`` returns an LLMResponse with text content and non-negative token counts."""
        response = check_response(run_async(invoke(plugin.generate, llm_request)))
        assert response.content, "the reply is empty"

    def test_does_not_change_the_request(self, plugin: Any, llm_request: LLMRequest) -> None:
        """``generate`` leaves its request as it was."""
        before = copy.deepcopy(llm_request)
        run_async(invoke(plugin.generate, llm_request))
        assert llm_request == before, "generate() changed its request; retries and middleware reuse it"

    def test_works_in_the_llm_pipeline(self, plugin: Any, llm_request: LLMRequest) -> None:
        """The client answers through the LLM pipeline a run uses, which times the call."""
        response = check_response(run_async(LLMPipeline(plugin).call(llm_request)))
        assert response.latency_s > 0, f"the pipeline measured no time for the call: latency_s={response.latency_s}"
        assert response.attempts == 1

    def test_many_concurrent_calls_all_answer(self, plugin: Any) -> None:
        """Many calls at once all answer."""
        requests = [sample_request(f"Question {i}: is {i} even?", row_id=f"r{i}") for i in range(self.concurrent_calls)]

        async def main() -> list[Any]:
            return await asyncio.gather(*(invoke(plugin.generate, r) for r in requests))

        responses = run_async(main())
        assert len(responses) == len(requests)
        for response in responses:
            check_response(response)

    def test_answers_every_row_of_a_real_run(
        self, plugin_options: dict[str, Any], plugin_context: PluginContext
    ) -> None:
        """In a real run with prompts, every row gets a text reply."""
        from elspeth import load_settings_text, run_settings

        cls = self._class()
        base = Path(plugin_context.base_dir)
        (base / "contract.csv").write_text("id,question\na,What is 2+2?\nb,Name a colour.\nc,Say hi.\n", "utf-8")
        text = (
            "datasource: {plugin: csv, options: {path: contract.csv, id_column: id}}\n"
            f"llm: {{plugin: {cls.name}, options: {json.dumps(plugin_options, default=str)}}}\n"
            "prompts: {system: Answer briefly., user: '{{ question }}'}\n"
            "orchestrator: rows\n"
            "concurrency: 2\n"
        )
        result = run_settings(load_settings_text(text, base_dir=base), self.registry("datasources"))
        assert [f.error for f in result.failures] == []
        assert [r.row_id for r in result.records] == ["a", "b", "c"]
        assert all(isinstance(r.outputs["response"], str) for r in result.records)
