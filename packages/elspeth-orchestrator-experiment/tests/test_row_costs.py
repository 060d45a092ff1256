"""What a row cost: the llm_guard judge's calls are counted, and failed rows carry and report their cost."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import Failure, Record
from elspeth_experiment.plugins.summaries import CostSummary
from elspeth_experiment.protocols import ExperimentResult

ECHO = {"plugin": "echo", "options": {"cost": 0.25}}


def _static_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)  # the static client's rule: about four characters a token


def _judge(verdict: str, cost: float = 0.1) -> dict[str, Any]:
    judge = {"plugin": "static", "options": {"content": verdict, "metrics": {"cost": cost}}}
    return {"plugin": "llm_guard", "options": {"llm": judge}}


def test_the_judges_tokens_latency_and_cost_are_part_of_the_row(run_suite: Any) -> None:
    result = run_suite({"validators": [_judge("VALID")]}, llm=ECHO, rows=3)
    assert not result.failures
    for record in result.records:
        judge = record.metrics["validator"]
        main_prompt = len(f"Rate: {record.inputs['text']}")  # the echo client counts characters
        assert judge["calls"] == 1
        assert judge["cost"] == pytest.approx(0.1)
        assert judge["prompt_tokens"] > 0
        assert judge["completion_tokens"] == _static_tokens("VALID")
        assert record.metrics["cost"] == pytest.approx(0.25 + 0.1)
        assert record.metrics["prompt_tokens"] == main_prompt + judge["prompt_tokens"]
        assert record.metrics["completion_tokens"] == 7 + _static_tokens("VALID")
        assert record.metrics["latency_s"] >= judge["latency_s"] >= 0


def test_a_row_the_judge_rejects_keeps_every_call_it_paid_for(run_suite: Any) -> None:
    result = run_suite({"validators": [_judge("INVALID: no")], "validation_retries": 1}, llm=ECHO, rows=2)
    assert not result.records
    for failure in result.failures:
        assert failure.stage == "validation:llm_guard"
        # two asks of the experiment's LLM and two verdicts of the judge
        assert failure.metrics["cost"] == pytest.approx(2 * 0.25 + 2 * 0.1)
        assert failure.metrics["validator"]["calls"] == 2
        assert failure.metrics["completion_tokens"] == 2 * 7 + 2 * _static_tokens("INVALID: no")


def test_cost_summary_counts_the_failed_rows_cost(run_suite: Any) -> None:
    # rows 0 and 2 pass the regex, rows 1 and 3 are rejected twice each, then fail
    pattern = {"plugin": "regex_match", "options": {"pattern": "number [02]", "mode": "search"}}
    result = run_suite(
        {"validators": [pattern], "validation_retries": 1, "aggregators": ["cost_summary"]}, llm=ECHO, rows=4
    )
    assert [f.row_id for f in result.failures] == ["r001", "r003"]
    assert [f.metrics["cost"] for f in result.failures] == [pytest.approx(0.5)] * 2
    prompt = len("Rate: item number 1")
    assert [f.metrics["prompt_tokens"] for f in result.failures] == [2 * prompt] * 2
    assert all(f.metrics["latency_s"] >= 0 for f in result.failures)
    summary = result.aggregates["experiments"]["default"]["aggregates"]["cost_summary"]
    assert summary["cost"]["total"] == pytest.approx(2 * 0.25 + 2 * 0.5)
    assert summary["failed_cost"] == pytest.approx(1.0)
    assert (summary["rows"], summary["failed_rows"], summary["rows_with_cost"]) == (2, 2, 4)
    assert summary["prompt_tokens"]["total"] == 2 * prompt + 2 * 2 * prompt


def test_a_row_whose_call_never_answered_costs_nothing(run_suite: Any) -> None:
    result = run_suite({"aggregators": ["cost_summary"]}, llm={"plugin": "gauss", "options": {"fail_rows": ["r000"]}})
    (failure,) = result.failures
    assert failure.stage == "llm"
    assert failure.metrics == {}
    summary = result.aggregates["experiments"]["default"]["aggregates"]["cost_summary"]
    assert summary["failed_rows"] == 1
    assert summary["failed_cost"] is None


def test_cost_summary_on_records_alone_and_on_a_whole_experiment() -> None:
    records = [Record(row_id="a", inputs={}, metrics={"cost": 1.0, "prompt_tokens": 10, "completion_tokens": 2})]
    failures = [Failure("b", {}, "validation:json", "no", metrics={"cost": 0.5, "prompt_tokens": 8})]
    plugin = CostSummary(CostSummary.Options())
    alone = plugin.finalize(records)
    assert (alone["cost"]["total"], alone["failed_rows"], alone["failed_cost"]) == (1.0, 0, None)
    whole = plugin.finalize_result(ExperimentResult("e", True, records, failures))
    assert whole["cost"]["total"] == 1.5
    assert whole["cost"]["count"] == 2
    assert whole["total_tokens"]["total"] == 20
    assert whole["failed_cost"] == 0.5
