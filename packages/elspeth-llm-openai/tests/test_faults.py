"""The client inside core's LLM pipeline, against a server that fails the way real services do."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, Row, run_rows
from elspeth.llm_errors import LLMCallFailed
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

FAST_RETRY = RetryPolicy(max_attempts=10, initial_delay_s=0.01, max_delay_s=0.1, timeout_s=2.0)


def run_all(pipeline: LLMPipeline, prompts: list[str], concurrency: int) -> dict[str, list[LLMResponse | Exception]]:
    outcomes: dict[str, list[LLMResponse | Exception]] = {p: [] for p in prompts}
    rows = [Row(str(i), {"q": p}, i) for i, p in enumerate(prompts)]

    async def handle(row: Row) -> None:
        request = LLMRequest("Reply with a score.", row.data["q"], metadata={"row_id": row.id})
        try:
            outcomes[row.data["q"]].append(await pipeline.call(request))
        except LLMCallFailed as exc:
            outcomes[row.data["q"]].append(exc)

    asyncio.run(run_rows(rows, handle, concurrency=concurrency))
    return outcomes


def settle(server: LLMTestServer, expected: int) -> int:
    # a hung request is logged once the server sees the client hang up, a moment after the client gives up
    deadline = time.monotonic() + 5
    while len(server.requests("chat/completions")) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(server.requests("chat/completions"))


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_every_row_is_answered_exactly_once_through_a_mix_of_faults(
    llm_server_factory: LLMServerFactory, api_key: str, transport: str
) -> None:
    server = llm_server_factory(
        api_key=api_key,
        seed=11,
        latency_ms=5,
        jitter_ms=5,
        rate_429=0.2,
        retry_after_s=0.05,
        rate_500=0.05,
        rate_503=0.03,
        rate_hang=0.02,
        rate_drop=0.02,
        rate_malformed=0.02,
    )
    for i, fault in enumerate(["429", "500", "503", "hang", "drop", "malformed"]):
        server.script([fault], match=f"question {i * 20}")  # each fault at least once, whatever the draws
    client = OpenAIClient(
        OpenAIClient.Options(
            model="gpt-test", base_url=server.openai_base_url, api_key_env="OPENAI_TEST_KEY", transport=transport
        )
    )
    prompts = [f"question {i}" for i in range(150)]
    outcomes = run_all(LLMPipeline(client, retry=FAST_RETRY, name="openai"), prompts, concurrency=16)

    assert {p: len(o) for p, o in outcomes.items()} == dict.fromkeys(prompts, 1)
    failed = {p: str(o[0]) for p, o in outcomes.items() if isinstance(o[0], Exception)}
    assert failed == {}
    assert server.successes_per_prompt() == dict.fromkeys(prompts, 1), "a prompt was answered twice"
    responses = [o[0] for o in outcomes.values() if isinstance(o[0], LLMResponse)]
    attempts = sum(r.attempts for r in responses)
    settle(server, attempts)
    per_prompt = Counter(r.prompt for r in server.requests())
    mismatch = {
        p: (o[0].attempts, [r.outcome for r in server.requests() if r.prompt == p])
        for p, o in outcomes.items()
        if isinstance(o[0], LLMResponse) and o[0].attempts != per_prompt[p]
    }
    assert mismatch == {}
    assert settle(server, attempts) == attempts, "every attempt reaches the server once: no hidden SDK retries"
    seen = Counter(r.outcome for r in server.requests())
    assert {"429", "500", "503", "hang", "drop", "malformed"} <= set(seen), seen
    assert attempts > len(prompts)


def test_client_errors_are_not_retried_and_attempts_are_recorded(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    keyed_server.script(["400"], match="question 3")
    keyed_server.script(["401"], match="question 4")
    keyed_server.script(["content_filter"], match="question 5")
    keyed_server.script(["500", "429:0.3", "drop"], match="question 6")
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    prompts = [f"question {i}" for i in range(8)]
    outcomes = run_all(LLMPipeline(client, retry=FAST_RETRY), prompts, concurrency=4)

    for prompt, status in (("question 3", 400), ("question 4", 401), ("question 5", 400)):
        [error] = outcomes[prompt]
        assert isinstance(error, LLMCallFailed)
        assert "not retryable after 1 attempt" in str(error)
        assert [(a["status"], a["retryable"]) for a in error.attempts] == [(status, False)]
        assert len([r for r in keyed_server.requests() if r.prompt == prompt]) == 1
    [retried] = outcomes["question 6"]
    assert isinstance(retried, LLMResponse)
    assert retried.attempts == 4
    arrivals = [r.t for r in keyed_server.requests() if r.prompt == "question 6"]
    assert [r.outcome for r in keyed_server.requests() if r.prompt == "question 6"] == ["500", "429", "drop", "ok"]
    assert arrivals[2] - arrivals[1] >= 0.3, "the pipeline did not wait for Retry-After"


def test_a_hang_past_the_timeout_is_retried_without_a_duplicate(
    options: dict[str, Any], keyed_server: LLMTestServer
) -> None:
    keyed_server.script(["hang", "hang"], match="slow one")
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))
    policy = RetryPolicy(max_attempts=3, initial_delay_s=0.01, timeout_s=0.5)
    outcomes = run_all(LLMPipeline(client, retry=policy), ["slow one", "quick one"], concurrency=2)

    [answer] = outcomes["slow one"]
    assert isinstance(answer, LLMResponse)
    assert answer.attempts == 3
    settle(keyed_server, 4)
    assert [r.outcome for r in keyed_server.requests() if r.prompt == "slow one"] == ["hang", "hang", "ok"]
    assert keyed_server.successes_per_prompt() == {"slow one": 1, "quick one": 1}
