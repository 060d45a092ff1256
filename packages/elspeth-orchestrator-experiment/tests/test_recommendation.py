"""``score_recommendation`` knows what it did not see (failed rows, an early stop) and sizes at its own confidence."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from scipy import stats

from elspeth import Failure, Record
from elspeth_experiment.plugins.recommendation import ScoreRecommendation, rows_for_half_width
from elspeth_experiment.protocols import ExperimentResult


def _records(values: list[float]) -> list[Record]:
    return [Record(row_id=str(i), inputs={}, metrics={"scores": {"q": v}}) for i, v in enumerate(values)]


def _by_brute_force(values: list[float], half_width: float, confidence: float) -> int:
    sd = statistics.stdev(values)
    n = 2
    while stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
    return n


def test_the_rows_needed_use_the_t_quantile_of_the_configured_confidence() -> None:
    values = [0.0, 1.0] * 10  # sd 0.513
    for confidence in (0.8, 0.9, 0.95, 0.99):
        assert rows_for_half_width(values, 0.25, confidence) == _by_brute_force(values, 0.25, confidence)
    # the fixed normal 1.96 of old would say 17 for 95%; Student's t with so few rows needs more
    assert math.ceil((1.96 * statistics.stdev(values) / 0.25) ** 2) == 17
    assert rows_for_half_width(values, 0.25, 0.95) == 19
    assert rows_for_half_width(values, 0.25, 0.8) < rows_for_half_width(values, 0.25, 0.95)
    assert rows_for_half_width(values, 0.0) is None


def test_the_inconclusive_reason_quotes_rows_at_the_configured_confidence() -> None:
    values = [0.5 + 0.4 * (i % 2) for i in range(40)]
    plugin = ScoreRecommendation(ScoreRecommendation.Options(target=0.68, confidence=0.9))
    out = plugin.finalize(_records(values))
    assert out["recommendation"].startswith("Inconclusive")
    assert "the 90% interval" in out["reason"]
    assert f"roughly {_by_brute_force(values, abs(0.7 - 0.68), 0.9)} scores" in out["reason"]


def test_failed_rows_and_an_early_stop_become_caveats() -> None:
    records = _records([0.8 + 0.01 * (i % 5) for i in range(40)])
    failures = [Failure(row_id=f"f{i}", inputs={}, stage="llm", error="timeout") for i in range(3)]
    stop = {"plugin": "threshold", "reason": "mean of scores.q is 0.82, gte 0.8"}
    result = ExperimentResult("e", True, records, failures, early_stop=stop, rows_not_run=57)
    out = ScoreRecommendation(ScoreRecommendation.Options(target=0.7)).finalize_result(result)
    assert out["recommendation"] == "Meets the target."
    assert out["caveats"][0].startswith("3 rows failed and are excluded")
    assert out["caveats"][1] == "stopped early: mean of scores.q is 0.82, gte 0.8; 57 rows were not run"
    assert (out["failed"], out["early_stop"]) == (3, stop["reason"])
    plugin = ScoreRecommendation(ScoreRecommendation.Options(target=0.7))
    one = plugin.finalize_result(ExperimentResult("e", True, records, failures[:1]))
    assert one["caveats"][0].startswith("1 row failed and is excluded")
    assert plugin.finalize_result(ExperimentResult("e", True, records))["caveats"] == []


STOP = {"metric": "scores.default", "threshold": 0, "comparison": "gt"}


def test_inside_a_run_the_recommendation_sees_failures_and_the_stop(run_suite: Any) -> None:
    failing = [f"r{i:03d}" for i in range(0, 12, 3)]
    result = run_suite(
        {
            "row_plugins": ["score_extractor"],
            "aggregators": [{"plugin": "score_recommendation", "options": {"min_samples": 2}}],
            "early_stop": [{"plugin": "threshold", "options": {**STOP, "min_rows": 6}}],
        },
        llm={"plugin": "gauss", "options": {"fail_rows": failing}},
        rows=40,
        concurrency=1,
    )
    experiment = result.aggregates["experiments"]["default"]
    recommendation = experiment["aggregates"]["score_recommendation"]
    # r000, r003 and r006 failed before the sixth scored row (r008) stopped the run
    assert (experiment["failed"], experiment["succeeded"]) == (3, 6)
    assert recommendation["caveats"][0].startswith("3 rows failed and are excluded")
    assert recommendation["caveats"][1].startswith("stopped early: mean of scores.default is")
    assert recommendation["caveats"][1].endswith(f"; {experiment['not_run']} rows were not run")
    assert recommendation["failed"] == 3


@pytest.mark.parametrize("confidence", [0.8, 0.99])
def test_the_interval_and_level_follow_the_confidence(confidence: float) -> None:
    values = [0.8 + 0.01 * (i % 5) for i in range(40)]
    out = ScoreRecommendation(ScoreRecommendation.Options(target=0.7, confidence=confidence)).finalize(_records(values))
    low, high = stats.t.interval(confidence, 39, loc=statistics.fmean(values), scale=stats.sem(values))
    assert out["ci"] == pytest.approx([low, high])
    assert f"the {confidence:.0%} interval" in out["reason"]
