"""The builtin validators, aggregators, early stops and per-criterion thresholds, through the orchestrator."""

from __future__ import annotations

import json
import statistics
from typing import Any

import numpy as np
import pytest

from elspeth import ConfigError, LLMResponse, Record, Row
from elspeth_experiment.plugins.recommendation import ScoreRecommendation
from elspeth_experiment.plugins.scoring import ScoreExtractor
from elspeth_experiment.plugins.summaries import CostSummary, LatencySummary

STATIC_VALID = {"plugin": "static", "options": {"content": "VALID - fine"}}


def test_regex_json_and_schema_validators(run_suite: Any) -> None:
    schema = {"type": "object", "required": ["score"], "properties": {"score": {"type": "number", "maximum": 1}}}
    result = run_suite(
        {
            "experiments": [
                {"name": "ok", "baseline": True, "validators": [{"plugin": "json", "options": {"schema": schema}}]},
                {
                    "name": "big",
                    "llm_options": {"score": 7},
                    "validators": [{"plugin": "json", "options": {"schema": schema}}],
                },
                {
                    "name": "re",
                    "validators": [{"plugin": "regex_match", "options": {"pattern": "SCORE.*", "flags": "IGNORECASE"}}],
                },
                {"name": "nojson", "llm": {"plugin": "static", "options": {"content": "hi"}}, "validators": ["json"]},
            ]
        },
        rows=2,
    )
    experiments = result.aggregates["experiments"]
    assert experiments["ok"]["succeeded"] == 2
    big = [f for f in result.failures if f.group == "big"]
    assert big[0].stage == "validation:json"
    assert "breaks the schema at score" in big[0].error
    assert json.loads(big[0].output["response"])["score"] == 7
    re_fail = [f for f in result.failures if f.group == "re"]
    assert re_fail[0].error == "response does not match /SCORE.*/"
    assert [f.error.split(":")[0] for f in result.failures if f.group == "nojson"] == ["response is not JSON"] * 2


def test_validation_retries_ask_again_then_record_every_attempt(run_suite: Any) -> None:
    third = {"plugin": "regex_match", "options": {"pattern": '"attempt": 3', "mode": "search"}}
    passes = run_suite({"validators": [third], "validation_retries": 2}, llm={"plugin": "echo", "options": {"cost": 1}})
    assert not passes.failures
    record = passes.records[0]
    assert record.metrics["validation_retries"] == 2
    assert record.metrics["cost"] == 3  # the rejected calls were paid for too
    fails = run_suite({"validators": [third], "validation_retries": 1}, rows=1)
    (failure,) = fails.failures
    assert failure.stage == "validation:regex_match"
    assert [a["attempt"] for a in failure.attempts] == [1, 2]
    assert all(json.loads(a["response"])["attempt"] == a["attempt"] for a in failure.attempts)
    assert json.loads(failure.output["response"])["attempt"] == 2


def test_llm_guard_uses_a_second_llm_from_the_registry(run_suite: Any) -> None:
    guard = {"plugin": "llm_guard", "options": {"llm": STATIC_VALID, "user_prompt": "{{ text }} -> {{ response }}"}}
    invalid = {"plugin": "llm_guard", "options": {"llm": {"plugin": "static", "options": {"content": "INVALID: rude"}}}}
    odd = {"plugin": "llm_guard", "options": {"llm": {"plugin": "static", "options": {"content": "maybe"}}}}
    result = run_suite(
        {
            "experiments": [
                {"name": "ok", "baseline": True, "validators": [guard]},
                {"name": "bad", "validators": [invalid]},
                {"name": "odd", "validators": [odd]},
            ]
        },
        rows=2,
    )
    assert result.aggregates["experiments"]["ok"]["succeeded"] == 2
    errors = {f.group: f.error for f in result.failures}
    assert errors["bad"] == "llm_guard judged the response invalid: INVALID: rude"
    assert errors["odd"].startswith("llm_guard: unexpected verdict 'maybe'")


def test_llm_guard_problems_are_found_before_any_row(run_suite: Any) -> None:
    guard = {"plugin": "llm_guard", "options": {"llm": {"plugin": "nope"}, "user_prompt": "{{ missing }}"}}
    with pytest.raises(ConfigError) as info:
        run_suite({"validators": [guard]})
    message = str(info.value)
    assert "orchestrator.options.validators[0].options.llm" in message
    assert "orchestrator.options.validators[0].options.user_prompt" in message
    assert "'missing'" in message


def test_per_criterion_thresholds_and_modes() -> None:
    extractor = ScoreExtractor(
        ScoreExtractor.Options(threshold=3, thresholds={"b": 5}, threshold_modes={"c": "lt"}, criteria=None)
    )
    responses = {c: LLMResponse(content="", metrics={"score": 4}) for c in ("a", "b", "c")}
    assert extractor.process_row(Row("r", {}, 0), responses)["score_flags"] == {"a": True, "b": False, "c": False}


def _records(metrics: list[dict[str, Any]]) -> list[Record]:
    return [Record(row_id=str(i), inputs={}, metrics=m) for i, m in enumerate(metrics)]


def test_cost_and_latency_summaries() -> None:
    rng = np.random.default_rng(0)
    latencies = list(rng.exponential(0.2, 101))
    metrics = [
        {"prompt_tokens": 10 + i, "completion_tokens": 5, "cost": 0.01 * i, "latency_s": lat}
        for i, lat in enumerate(latencies)
    ]
    cost = CostSummary(CostSummary.Options()).finalize(_records(metrics))
    assert cost["prompt_tokens"]["total"] == sum(10 + i for i in range(101))
    assert cost["total_tokens"]["max"] == 10 + 100 + 5
    assert cost["cost"]["mean"] == pytest.approx(0.5)
    assert cost["cost"]["median"] == pytest.approx(0.5)
    assert CostSummary(CostSummary.Options()).finalize(_records([{"prompt_tokens": 1}]))["cost"] is None
    lat = LatencySummary(LatencySummary.Options()).finalize(_records(metrics))
    for q in (50, 95, 99):
        assert lat[f"p{q}"] == pytest.approx(float(np.percentile(latencies, q)))
    assert lat["mean"] == pytest.approx(statistics.fmean(latencies))
    assert lat["max"] == max(latencies)


def test_every_record_of_a_run_feeds_the_summaries(run_suite: Any) -> None:
    result = run_suite(
        {"aggregators": ["cost_summary", "latency_summary"]}, llm={"plugin": "echo", "options": {"cost": 0.5}}
    )
    aggregates = result.aggregates["experiments"]["default"]["aggregates"]
    assert aggregates["cost_summary"]["cost"]["total"] == pytest.approx(3.0)
    assert aggregates["cost_summary"]["completion_tokens"]["total"] == 6 * 7
    assert aggregates["latency_summary"]["count"] == 6


def _recommend(values: list[float], **options: Any) -> dict[str, Any]:
    plugin = ScoreRecommendation(ScoreRecommendation.Options(**options))
    return plugin.finalize(_records([{"scores": {"q": v}} for v in values]))


def test_score_recommendation_verdicts() -> None:
    few = _recommend([0.9, 0.8])
    assert few["recommendation"] == "Collect more data before deciding."
    assert "fewer than the 30" in few["reason"]
    high = [0.8 + 0.01 * (i % 5) for i in range(40)]
    assert _recommend(high, target=0.7)["recommendation"] == "Meets the target."
    assert _recommend(high, target=0.9)["recommendation"] == "Falls short of the target."
    mixed = _recommend([0.5 + 0.4 * (i % 2) for i in range(40)], target=0.7)
    assert mixed["recommendation"].startswith("Inconclusive")
    assert "contains the target 0.7" in mixed["reason"]
    holes = _recommend([*high, *([None] * 10)], target=0.7)
    assert any("missing" in c for c in holes["caveats"])


def test_threshold_early_stop_on_a_running_mean(run_suite: Any) -> None:
    stop = {"plugin": "threshold", "options": {"metric": "scores.default", "threshold": 2, "min_rows": 3}}
    result = run_suite(
        {"row_plugins": ["score_extractor"], "early_stop": [stop]},
        llm={"plugin": "echo", "options": {"score": 1}},
        rows=30,
        concurrency=1,
    )
    exp = result.aggregates["experiments"]["default"]
    assert exp["succeeded"] == 3
    assert exp["not_run"] == 27
    assert exp["early_stop"]["plugin"] == "threshold"
    assert exp["early_stop"]["value"] == 1
    assert exp["early_stop"]["rows_observed"] == 3
    assert result.metadata.to_dict()["early_stop"]["default"]["reason"] == "mean of scores.default is 1, lt 2"
    assert result.metadata.status == "stopped"
    assert result.metadata.outcome.reason == "early stop by threshold (default)"


def test_failure_rate_early_stop_sees_failures(run_suite: Any) -> None:
    failing = [f"r{i:03d}" for i in range(0, 30, 2)]  # every other row fails
    stop = {"plugin": "failure_rate", "options": {"max_rate": 0.4, "min_rows": 6}}
    result = run_suite(
        {"early_stop": [stop]}, llm={"plugin": "gauss", "options": {"fail_rows": failing}}, rows=30, concurrency=1
    )
    exp = result.aggregates["experiments"]["default"]
    assert exp["early_stop"]["plugin"] == "failure_rate"
    assert exp["early_stop"]["finished"] == 6
    assert exp["early_stop"]["failure_rate"] == pytest.approx(0.5)
    assert exp["succeeded"] + exp["failed"] == 6
    assert exp["not_run"] == 24
    assert result.metadata.status == "stopped"
