"""Real runs through the engine with the `openai` client: the adaptive limiter, audit trail and health monitor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest, RunResult
from elspeth.builtins.controls import Adaptive
from elspeth.config import load_settings
from elspeth.engine import run_settings
from elspeth.orchestration.retry import RetryPolicy
from elspeth_llm_openai import OpenAIClient
from elspeth_testing import build_registry
from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import WriteSettings

SETTINGS = """\
name: controls
datasource: {plugin: csv, options: {path: questions.csv, id_column: id}}
llm:
  plugin: openai
  options: {model: gpt-test, base_url: BASE_URL, api_key_env: OPENAI_TEST_KEY}
middleware:
  - {plugin: audit_logger, options: {path: audit.jsonl, include_prompts: true, include_responses: true}}
  - {plugin: health_monitor, options: {heartbeat_interval_s: 0.05}}
rate_limiter: {plugin: adaptive, options: {initial_rps: 200}}
retry: {max_attempts: 5, initial_delay_s: 0.01, max_delay_s: 0.1, timeout_s: 10}
prompts: {user: 'Question: {{ q }}'}
orchestrator: rows
concurrency: 4
output_dir: out
"""
QUESTIONS = "id,q\n" + "".join(f"q{i},what is {i} plus {i}?\n" for i in range(12))


def run(server: LLMTestServer, write_settings: WriteSettings) -> tuple[RunResult, Path]:
    path = write_settings(SETTINGS.replace("BASE_URL", server.openai_base_url), {"questions.csv": QUESTIONS})
    result = run_settings(load_settings(path), build_registry("elspeth_llm_openai.plugin"))
    return result, path.parent / "out"


def test_a_run_records_the_limiters_history_and_the_health_summary(
    keyed_server: LLMTestServer, write_settings: WriteSettings, api_key: str
) -> None:
    keyed_server.configure(latency_ms=20)
    keyed_server.script(["429:0.1", "429:0.1"], match="what is 3 plus 3?")
    result, _ = run(keyed_server, write_settings)

    assert [f.error for f in result.failures] == []
    assert len(result.records) == 12
    lanes = result.metadata.to_dict()["rate_limiter"]["adaptive"]
    [(lane, state)] = lanes.items()
    assert lane.startswith(f"{keyed_server.openai_base_url}|key-"), "the lane is not per endpoint and key"
    assert api_key not in json.dumps(lanes)
    events = [h["event"] for h in state["history"]]
    assert events[0] == "start"
    assert "429 (retry after 0.1 s)" in events
    assert state["cuts"] >= 1
    health = result.metadata.to_dict()["llm_middleware"]["health_monitor"]
    assert (health["requests"], health["successes"], health["failures"], health["in_flight"]) == (12, 12, 0, 0)
    assert health["retries"] == 2
    assert health["latency_s"]["p50"] >= 0.02
    assert health["heartbeats"] >= 1, "the run lasted longer than the heartbeat interval"


def test_the_audit_trail_of_a_run_has_its_run_id_and_never_the_key(
    keyed_server: LLMTestServer, write_settings: WriteSettings, api_key: str
) -> None:
    keyed_server.script(["500"], match="what is 5 plus 5?")
    result, out = run(keyed_server, write_settings)

    text = (out / "audit.jsonl").read_text("utf-8")
    assert api_key not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert {x["run_id"] for x in lines} == {result.metadata.run_id}
    assert result.metadata.run_id
    assert sorted(x["row_id"] for x in lines if x["event"] == "response") == sorted(f"q{i}" for i in range(12))
    assert {x["event"] for x in lines} == {"request", "response"}
    retried = next(x for x in lines if x["event"] == "response" and x["row_id"] == "q5")
    assert retried["attempts"] == 2
    assert all(x["endpoint"] == keyed_server.openai_base_url for x in lines)
    assert all(x["key_id"].startswith("key-") for x in lines)


def test_two_keys_on_one_endpoint_get_two_lanes(llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_A", "sk-a-not-a-secret")
    monkeypatch.setenv("KEY_B", "sk-b-not-a-secret")
    limiter = Adaptive(Adaptive.Options(initial_rps=100))
    retry = RetryPolicy(max_attempts=3, initial_delay_s=0.01, timeout_s=5)

    def pipeline(env: str) -> LLMPipeline:
        options: dict[str, Any] = {"model": "m", "base_url": llm_server.openai_base_url, "api_key_env": env}
        return LLMPipeline(
            OpenAIClient(OpenAIClient.Options.model_validate(options)), rate_limiter=limiter, retry=retry
        )

    a, b = pipeline("KEY_A"), pipeline("KEY_B")
    llm_server.script(["429:0"], match="from a")

    async def main() -> None:
        await asyncio.gather(a.call(LLMRequest("s", "from a")), b.call(LLMRequest("s", "from b")))

    asyncio.run(main())
    lanes = limiter.summary()
    assert set(lanes) == {f"{llm_server.openai_base_url}|{a.key_id}", f"{llm_server.openai_base_url}|{b.key_id}"}
    assert a.key_id != b.key_id
    assert lanes[f"{llm_server.openai_base_url}|{a.key_id}"]["cuts"] == 1
    assert lanes[f"{llm_server.openai_base_url}|{b.key_id}"]["cuts"] == 0
    assert "sk-a" not in json.dumps(lanes)
