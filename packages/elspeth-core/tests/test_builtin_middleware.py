"""audit_logger, prompt_shield and health_monitor."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from elspeth import LLMPipeline, LLMRequest, LLMResponse, PluginContext, Usage
from elspeth.builtins.middleware import AuditLogger, HealthMonitor, PromptShield
from elspeth.llm_errors import LLMCallFailed, LLMContentRefused, LLMServerError
from elspeth.orchestration.retry import RetryPolicy


class EchoClient:
    async def generate(self, request: LLMRequest) -> LLMResponse:
        if "fail" in request.user:
            raise LLMServerError("down", status=500)
        return LLMResponse(content=f"echo: {request.user}", usage=Usage(7, 3), model="echo-1")


def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext("run-1", "test", tmp_path, tmp_path / "out")


def run_calls(pipeline: LLMPipeline, users: list[str], params: dict | None = None) -> list:
    async def go() -> list:
        out = []
        for i, user in enumerate(users):
            metadata = {"run_id": "run-1", "row_id": str(i)}
            request = LLMRequest(system="sys", user=user, params=dict(params or {}), metadata=metadata)
            try:
                out.append(await pipeline.call(request))
            except Exception as exc:
                out.append(exc)
        return out

    return asyncio.run(go())


def test_audit_logger_writes_requests_responses_and_errors_without_secrets(tmp_path):
    audit = AuditLogger(AuditLogger.Options(include_prompts=True, include_responses=True))
    audit.open(ctx(tmp_path))
    pipeline = LLMPipeline(EchoClient(), [audit], retry=RetryPolicy(max_attempts=2, initial_delay_s=0, jitter=False))
    run_calls(pipeline, ["hello", "please fail"], params={"temperature": 0.2, "api_key": "sk-live-123"})
    audit.close()
    lines = [json.loads(line) for line in (tmp_path / "out" / "audit.jsonl").read_text().splitlines()]
    assert [entry["event"] for entry in lines] == ["request", "response", "request", "error"]
    assert lines[0]["user"] == "hello"
    assert lines[0]["params"] == {"temperature": 0.2, "api_key": "[redacted]"}
    assert lines[1]["content"] == "echo: hello"
    assert lines[1]["usage"] == {"prompt": 7, "completion": 3}
    assert [(entry["run_id"], entry["row_id"]) for entry in lines] == [("run-1", "0")] * 2 + [("run-1", "1")] * 2
    assert lines[3]["stage"] == "llm"
    assert len(lines[3]["attempts"]) == 2
    assert "sk-live-123" not in (tmp_path / "out" / "audit.jsonl").read_text()


def test_audit_logger_leaves_prompts_out_unless_asked(tmp_path):
    audit = AuditLogger(AuditLogger.Options())
    audit.open(ctx(tmp_path))
    run_calls(LLMPipeline(EchoClient(), [audit]), ["private words"])
    audit.close()
    text = (tmp_path / "out" / "audit.jsonl").read_text()
    assert "private words" not in text
    assert '"event": "response"' in text


def test_prompt_shield_aborts_on_terms_in_any_case_and_in_the_system_prompt():
    shield = PromptShield(PromptShield.Options(denied_terms=["Project X"]))
    (result,) = run_calls(LLMPipeline(EchoClient(), [shield]), ["about project x"])
    assert isinstance(result, LLMContentRefused)
    system_only = PromptShield(PromptShield.Options(denied_terms=["sys"], check_user=False))
    (result,) = run_calls(LLMPipeline(EchoClient(), [system_only]), ["clean"])
    assert isinstance(result, LLMContentRefused)
    assert "system prompt" in str(result)


def test_prompt_shield_masks_every_occurrence_whatever_its_case():
    shield = PromptShield(PromptShield.Options(denied_terms=["acme"], patterns=[r"\d{3}-\d{4}"], on_violation="mask"))
    (response,) = run_calls(LLMPipeline(EchoClient(), [shield]), ["ACME and Acme and acme call 555-1234"])
    assert response.content == "echo: [REDACTED] and [REDACTED] and [REDACTED] call [REDACTED]"
    assert shield.summary() == {"violations": 1}


def test_prompt_shield_can_screen_responses_and_log_only(caplog):
    shield = PromptShield(
        PromptShield.Options(
            denied_terms=["echo"], check_user=False, check_system=False, check_response=True, on_violation="log"
        )
    )
    with caplog.at_level(logging.WARNING, logger="elspeth.prompt_shield"):
        (response,) = run_calls(LLMPipeline(EchoClient(), [shield]), ["hi"])
    assert response.content == "echo: hi"
    assert "denied content 'echo' in the response" in caplog.text


def test_prompt_shield_rejects_a_bad_pattern_at_configuration_time():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        PromptShield.Options(patterns=["(unclosed"])


def test_prompt_shield_matches_plain_terms_as_whole_words_and_patterns_as_written():
    shield = PromptShield(PromptShield.Options(denied_terms=["ass", "C++"], patterns=[r"cl\w+"], on_violation="mask"))
    (response,) = run_calls(LLMPipeline(EchoClient(), [shield]), ["first class; Ass. (ass) C++, mass"])
    # "class" holds "ass" but is no match for the term; the pattern cl\w+ still masks it, as written
    assert response.content == "echo: first [REDACTED]; [REDACTED]. ([REDACTED]) [REDACTED], mass"
    terms_only = PromptShield(PromptShield.Options(denied_terms=["ass"]))
    (passed,) = run_calls(LLMPipeline(EchoClient(), [terms_only]), ["a class of bass players, passing"])
    assert passed.content == "echo: a class of bass players, passing"
    (refused,) = run_calls(LLMPipeline(EchoClient(), [terms_only]), ["what an ass"])
    assert isinstance(refused, LLMContentRefused)


def test_health_monitor_counts_and_reports_percentiles():
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0))
    pipeline = LLMPipeline(EchoClient(), [monitor], retry=RetryPolicy(max_attempts=3, initial_delay_s=0, jitter=False))
    results = run_calls(pipeline, ["a", "b", "fail", "c"])
    assert [type(r) for r in results].count(LLMCallFailed) == 1
    summary = monitor.summary()
    assert summary["requests"] == 4
    assert summary["in_flight"] == 0
    assert summary["successes"] == 3
    assert summary["failures"] == 1
    assert summary["refused"] == 0
    assert summary["retries"] == 2
    assert summary["failure_rate"] == 0.25
    latency = summary["latency_s"]
    assert latency["window"] == 3
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]


def test_health_monitor_heartbeat_is_a_timer_from_open_to_close(tmp_path, caplog):
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0.05))

    async def go() -> tuple[int, int]:
        await monitor.open(ctx(tmp_path))
        await asyncio.sleep(0.4)  # no call at all: the heartbeat must not wait for one
        await monitor.close()
        beats = monitor.heartbeats
        await asyncio.sleep(0.2)
        return beats, monitor.heartbeats

    with caplog.at_level(logging.INFO, logger="elspeth.health"):
        at_close, later = asyncio.run(go())
    assert 3 <= at_close <= 9  # about 8 in 0.4 s; generous for a busy machine
    assert later == at_close, "the heartbeat went on after close()"
    beats = [r.getMessage() for r in caplog.records if r.name == "elspeth.health"]
    assert len(beats) == at_close
    assert json.loads(beats[0].removeprefix("heartbeat "))["requests"] == 0


def test_health_monitor_closes_cleanly_when_its_loop_is_gone(tmp_path):
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0.05))
    asyncio.run(monitor.open(ctx(tmp_path)))  # that loop ends, cancelling the timer
    asyncio.run(monitor.close())
    assert monitor.heartbeats == 0


def test_health_monitor_percentiles_interpolate_like_numpy_linear():
    monitor = HealthMonitor(HealthMonitor.Options(heartbeat_interval_s=0))

    async def feed() -> None:
        for value in [0.1, 0.2, 0.3, 0.4, 1.0]:
            response = LLMResponse(content="", latency_s=value)
            await monitor.on_success(LLMRequest(system="", user=""), response)

    asyncio.run(feed())
    latency = monitor.summary()["latency_s"]
    # numpy.percentile([0.1, 0.2, 0.3, 0.4, 1.0], [50, 95, 99]) == [0.3, 0.88, 0.976]
    assert latency["p50"] == pytest.approx(0.3)
    assert latency["p95"] == pytest.approx(0.88)
    assert latency["p99"] == pytest.approx(0.976)
