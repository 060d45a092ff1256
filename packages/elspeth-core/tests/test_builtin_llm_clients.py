"""The ``mock`` and ``static`` clients: the LLM client contract, then their own behaviour."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from elspeth import LLMRequest, LLMResponse, invoke
from elspeth.builtins.llm_clients import MockClient, MockError, StaticClient
from elspeth_testing import LLMClientContract, run_async, sample_request


class TestMockContract(LLMClientContract):
    plugin_class = MockClient


class TestMockJsonContract(LLMClientContract):
    plugin_class = MockClient

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"json_reply": True, "latency_ms": 1, "seed": 3}


class TestStaticContract(LLMClientContract):
    plugin_class = StaticClient

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"content": "Score: 0.7", "score": 0.7, "metrics": {"judge": "fixed"}}


def mock(**options: Any) -> MockClient:
    return MockClient(MockClient.Options(**options))


def ask(client: Any, request: LLMRequest) -> LLMResponse:
    response: LLMResponse = run_async(invoke(client.generate, request))
    return response


def test_mock_is_deterministic_in_prompts_and_seed() -> None:
    first = ask(mock(seed=5), sample_request("Rate the kettle"))
    again = ask(mock(seed=5), sample_request("Rate the kettle"))
    assert (first.content, first.metrics, first.usage) == (again.content, again.metrics, again.usage)


def test_mock_replies_differ_with_seed_and_with_prompt() -> None:
    prompts = [f"Rate product {i}" for i in range(10)]
    seed0 = [ask(mock(seed=0), sample_request(p)).metrics["score"] for p in prompts]
    seed1 = [ask(mock(seed=1), sample_request(p)).metrics["score"] for p in prompts]
    assert seed0 != seed1
    assert len(set(seed0)) > 1  # the prompt changes the score too


def test_mock_scores_stay_within_bounds_and_appear_in_the_text() -> None:
    client = mock(score_min=0.2, score_max=0.3)
    for i in range(50):
        response = ask(client, sample_request(f"prompt {i}"))
        score = response.metrics["score"]
        assert 0.2 <= score <= 0.3
        assert response.content.startswith(f"Score: {score}\n")


def test_mock_json_reply_is_a_json_object_with_score_and_rationale() -> None:
    response = ask(mock(json_reply=True), sample_request("Is this helpful?"))
    body = json.loads(response.content)
    assert body["score"] == response.metrics["score"]
    assert "Is this helpful?" in body["rationale"]


def test_mock_reports_model_and_token_counts() -> None:
    response = ask(mock(model="tiny"), LLMRequest(system="s" * 8, user="u" * 40))
    assert response.model == "tiny"
    assert response.usage.prompt_tokens == 2 + 10  # about four characters a token
    assert response.usage.completion_tokens >= 1


def outcomes(client: MockClient, prompts: list[str]) -> list[bool]:
    async def one(prompt: str) -> bool:
        try:
            await client.generate(sample_request(prompt))
        except MockError:  # the simulated failure; anything else propagates and fails the test
            return False
        return True

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(one(p) for p in prompts)))

    return run_async(main())


def test_mock_failure_rate_fails_that_share_of_prompts_and_the_same_ones_each_time() -> None:
    prompts = [f"q{i}" for i in range(400)]
    first = outcomes(mock(failure_rate=0.3, seed=2), prompts)
    assert 80 <= first.count(False) <= 160  # 30% of 400 is 120
    assert outcomes(mock(failure_rate=0.3, seed=2), prompts) == first
    assert outcomes(mock(failure_rate=0.0, seed=2), prompts).count(False) == 0


def test_mock_failure_rate_one_fails_everything() -> None:
    with pytest.raises(MockError, match=r"^mock failure \(chosen by failure_rate\)$"):
        ask(mock(failure_rate=1), sample_request())


def test_mock_latency_is_waited_without_blocking_other_calls() -> None:
    client = mock(latency_ms=50)

    async def many() -> list[LLMResponse]:
        return await asyncio.gather(*(client.generate(sample_request(f"q{i}")) for i in range(20)))

    started = time.perf_counter()
    run_async(many())
    elapsed = time.perf_counter() - started
    assert 0.05 <= elapsed < 0.5  # twenty 50 ms calls overlap instead of taking a second


def test_mock_options_are_checked() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        MockClient.Options(failure_rate=1.5)


def test_static_replies_the_same_whatever_the_prompt() -> None:
    client = StaticClient(StaticClient.Options(content="fixed", score=0.25, metrics={"k": 1}, model="m"))
    a = ask(client, sample_request("one"))
    b = ask(client, sample_request("a much longer second prompt"))
    assert (a.content, b.content) == ("fixed", "fixed")
    assert a.metrics == {"k": 1, "score": 0.25}
    assert a.model == "m"
    assert b.usage.prompt_tokens > a.usage.prompt_tokens


def test_static_without_score_has_no_score_metric() -> None:
    response = ask(StaticClient(StaticClient.Options(content="x")), sample_request())
    assert "score" not in response.metrics


def test_static_responses_do_not_share_metrics() -> None:
    client = StaticClient(StaticClient.Options(content="x", metrics={"k": 1}))
    first = ask(client, sample_request())
    first.metrics["cost"] = 1.0  # the pipeline writes the cost into the response's metrics
    assert "cost" not in ask(client, sample_request()).metrics
