"""How a call ends, and who hears of it: a refused answer is still priced, and every middleware learns the outcome."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, PluginContext, Usage
from elspeth.builtins.controls import PriceTable
from elspeth.builtins.middleware import AuditLogger, HealthMonitor, PromptShield
from elspeth.llm_errors import LLMContentRefused, LLMServerError
from elspeth.orchestration.pipeline import key_identity
from elspeth.orchestration.retry import RetryPolicy
from elspeth.orchestration.runner import Cancel


class LeakyClient:
    """Answers with a reply that holds a term the shield refuses, at a known price."""

    endpoint = "https://llm.example/v1"
    key_id = "key-0123456789ab"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        if "down" in request.user:
            raise LLMServerError("down", status=500)
        return LLMResponse(content="the password is hunter2", usage=Usage(1000, 500), model="gpt-x")


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out" / "audit.jsonl").read_text("utf-8").splitlines()]


def opened_audit(tmp_path: Path) -> AuditLogger:
    audit = AuditLogger(AuditLogger.Options())
    audit.open(PluginContext("run-9", "t", tmp_path, tmp_path / "out"))
    return audit


def call(pipeline: LLMPipeline, user: str = "tell me") -> LLMResponse:
    return asyncio.run(pipeline.call(LLMRequest("s", user, metadata={"run_id": "run-9", "row_id": "r1"})))


def price_table(budget: float | None = 0.000001) -> PriceTable:
    return PriceTable(PriceTable.Options(prices={"gpt-x": {"input": 2.0, "output": 8.0}}, budget=budget))


def test_an_answer_refused_by_middleware_is_priced_and_can_end_the_run(tmp_path: Path) -> None:
    audit = opened_audit(tmp_path)
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0))
    shield = PromptShield(PromptShield.Options(denied_terms=["hunter2"], check_response=True))
    prices = price_table()
    cancel = Cancel()
    client = LeakyClient()
    pipeline = LLMPipeline(client, [audit, monitor, shield], cost_tracker=prices, cancel=cancel)

    with pytest.raises(LLMContentRefused, match="'hunter2' in the response"):
        call(pipeline)
    audit.close()

    assert client.calls == 1
    expected = (1000 * 2.0 + 500 * 8.0) / 1_000_000
    assert prices.summary()["calls"] == 1
    assert prices.summary()["total_cost"] == pytest.approx(expected)
    assert cancel.is_set(), "the paid answer reached the budget, so the run must take no new rows"
    assert "budget" in (cancel.reason or "")
    lines = audit_lines(tmp_path)
    assert [(x["event"], x.get("stage")) for x in lines] == [("request", None), ("error", "response")]
    error = lines[1]
    assert error["error_type"] == "LLMContentRefused"
    assert error["cost"] == pytest.approx(expected)
    assert error["usage"] == {"prompt": 1000, "completion": 500}
    assert (error["run_id"], error["row_id"], error["endpoint"], error["key_id"]) == (
        "run-9",
        "r1",
        "https://llm.example/v1",
        "key-0123456789ab",
    )
    assert "hunter2 is" not in json.dumps(lines), "the refused reply itself was written to the audit trail"
    health = monitor.summary()
    assert (health["requests"], health["successes"], health["failures"], health["refused"]) == (1, 0, 1, 1)
    assert health["in_flight"] == 0


def test_middleware_inside_the_refuser_counts_the_call_once(tmp_path: Path) -> None:
    audit = opened_audit(tmp_path)
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0))
    shield = PromptShield(PromptShield.Options(denied_terms=["hunter2"], check_response=True))
    prices = price_table(budget=None)
    # the shield is outermost: the audit and the monitor see the answer before the shield refuses it
    pipeline = LLMPipeline(LeakyClient(), [shield, audit, monitor], cost_tracker=prices)

    with pytest.raises(LLMContentRefused):
        call(pipeline)
    audit.close()

    lines = audit_lines(tmp_path)
    assert [(x["event"], x.get("stage")) for x in lines] == [
        ("request", None),
        ("response", None),
        ("error", "response"),
    ]
    assert lines[1]["cost"] == pytest.approx(prices.total)
    assert "cost" not in lines[2], "the cost is already on the response line; summing the trail must not count it twice"
    health = monitor.summary()
    assert (health["requests"], health["successes"], health["failures"]) == (1, 0, 1)


def test_a_refused_prompt_is_heard_by_middleware_that_never_saw_it(tmp_path: Path) -> None:
    audit = opened_audit(tmp_path)
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0))
    shield = PromptShield(PromptShield.Options(denied_terms=["secret"]))
    prices = price_table()
    client = LeakyClient()
    pipeline = LLMPipeline(client, [shield, audit, monitor], cost_tracker=prices)

    with pytest.raises(LLMContentRefused, match="user prompt"):
        call(pipeline, "the secret plan")
    audit.close()

    assert client.calls == 0
    assert prices.summary()["calls"] == 0
    [line] = audit_lines(tmp_path)
    assert (line["event"], line["stage"], line["row_id"]) == ("error", "request", "r1")
    assert "usage" not in line
    health = monitor.summary()
    assert (health["requests"], health["failures"], health["refused"], health["in_flight"]) == (1, 1, 1, 0)


def test_every_middleware_hears_exactly_one_outcome_per_call() -> None:
    class Listener:
        def __init__(self) -> None:
            self.heard: list[str] = []

        def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
            self.heard.append("success")

        def on_error(self, request: LLMRequest, failed: Exception) -> None:
            self.heard.append("error")

        def on_refused(self, request: LLMRequest, error: Exception, response: LLMResponse | None) -> None:
            self.heard.append("refused:" + ("response" if response is not None else "request"))

    inner, outer = Listener(), Listener()
    shield = PromptShield(PromptShield.Options(denied_terms=["hunter2", "secret"], check_response=True))
    pipeline = LLMPipeline(LeakyClient(), [outer, shield, inner])
    for user in ("secret", "fine", "down"):
        with pytest.raises(Exception):  # noqa: B017, PT011 - refusals and the client's failure alike
            call(pipeline, user)
    clean = LLMPipeline(LeakyClient(), [outer, inner])
    assert call(clean).content.startswith("the password")
    assert outer.heard == inner.heard == ["refused:request", "refused:response", "error", "success"]


def test_the_client_key_identity_reaches_the_request_and_never_the_key() -> None:
    seen: list[dict[str, Any]] = []

    class Spy:
        endpoint = "https://llm.example"
        key_id = key_identity("sk-live-abcdef")

        async def generate(self, request: LLMRequest) -> LLMResponse:
            seen.append(dict(request.metadata))
            return LLMResponse(content="ok")

    call(LLMPipeline(Spy()))
    assert seen[0]["key_id"] == key_identity("sk-live-abcdef")
    assert seen[0]["key_id"].startswith("key-")
    assert len(seen[0]["key_id"]) == 16
    assert "abcdef" not in seen[0]["key_id"]
    assert key_identity("sk-live-abcdeg") != key_identity("sk-live-abcdef")
    assert key_identity(None) == key_identity("") == "none"


def test_a_retry_after_longer_than_the_cap_is_cut_to_it() -> None:
    policy = RetryPolicy(initial_delay_s=0.1, jitter=False, max_retry_after_s=2)
    assert policy.delay(1, 3600) == 2
    assert policy.delay(1, 1.5) == 1.5
    assert policy.delay(1, None) == 0.1
    assert RetryPolicy().max_retry_after_s == 60
