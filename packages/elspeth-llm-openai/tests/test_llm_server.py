"""The test server itself, as these tests rely on it: determinism, seeded faults, and the child-process mode."""

from __future__ import annotations

import asyncio
from typing import Any

from elspeth import LLMRequest
from elspeth_llm_openai import OpenAIClient
from elspeth_testing.llm_fixtures import LLMServerFactory


def ask(options: dict[str, Any], prompts: list[str]) -> list[str]:
    client = OpenAIClient(OpenAIClient.Options.model_validate(options))

    async def main() -> list[str]:
        out = []
        for p in prompts:
            try:
                out.append((await client.generate(LLMRequest("s", p))).content)
            except Exception as exc:
                out.append(type(exc).__name__)
        return out

    return asyncio.run(main())


def test_replies_and_fault_draws_repeat_with_the_seed(llm_server_factory: LLMServerFactory, api_key: str) -> None:
    prompts = [f"p{i}" for i in range(40)]
    runs = []
    for _ in range(2):
        server = llm_server_factory(api_key=api_key, seed=9, rate_429=0.3, rate_500=0.2)
        options = {"model": "m", "base_url": server.openai_base_url, "api_key_env": "OPENAI_TEST_KEY"}
        runs.append(ask(options, prompts))
    assert runs[0] == runs[1]
    assert {"LLMRateLimited", "LLMServerError"} <= set(runs[0])
    assert any(r.startswith("Score: ") for r in runs[0])


def test_a_server_in_a_child_process_is_controlled_over_http(
    llm_server_factory: LLMServerFactory, api_key: str
) -> None:
    server = llm_server_factory(api_key=api_key, process=True, latency_ms=30, jitter_ms=10)
    server.script(["503", "429:0"], match="second")
    options = {"model": "m", "base_url": server.openai_base_url, "api_key_env": "OPENAI_TEST_KEY"}
    assert ask(options, ["first", "second", "second", "second"])[1:3] == ["LLMServerError", "LLMRateLimited"]

    records = server.requests("chat/completions")
    assert [r.outcome for r in records] == ["ok", "503", "429", "ok"]
    assert all(r.duration_s >= 0.015 for r in records if r.outcome in {"ok", "503"})
    assert server.successes_per_prompt() == {"first": 1, "second": 1}
    assert server.config.latency_ms == 30
    server.reset()
    assert server.requests() == []
