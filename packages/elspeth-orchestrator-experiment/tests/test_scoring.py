"""``score_extractor`` and ``score_stats`` on their own."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest
from pydantic import ValidationError
from scipy.stats import t as t_dist

from elspeth import LLMResponse, Record, Row
from elspeth_experiment.plugins.scoring import ScoreExtractor, ScoreStats

ROW = Row("r1", {"text": "x"}, 0)


def _extract(responses: dict[str, LLMResponse], **options: Any) -> dict[str, Any]:
    return ScoreExtractor(ScoreExtractor.Options(**options)).process_row(ROW, responses)


def test_score_from_metrics_wins_over_content() -> None:
    response = LLMResponse(content="Score: 1", metrics={"score": 0.8})
    assert _extract({"a": response}) == {"scores": {"a": 0.8}}


def test_score_from_json_content_with_a_custom_key_and_percent() -> None:
    response = LLMResponse(content=json.dumps({"quality": "85%", "why": "ok"}))
    assert _extract({"a": response}, key="quality") == {"scores": {"a": 85.0}}


def test_score_from_the_default_regex_and_a_custom_one() -> None:
    assert _extract({"a": LLMResponse(content="Reasoning...\nscore = 4.5")})["scores"] == {"a": 4.5}
    custom = _extract({"a": LLMResponse(content="Rating: 3/5")}, pattern=r"Rating: (\d+)/5")
    assert custom["scores"] == {"a": 3.0}


def test_missing_and_non_numeric_scores_are_none_and_do_not_pass() -> None:
    responses = {
        "a": LLMResponse(content="no number here"),
        "b": LLMResponse(content=json.dumps({"score": "high"})),
        "c": LLMResponse(content="x", metrics={"score": float("nan")}),
    }
    out = _extract(responses, threshold=0)
    assert out["scores"] == {"a": None, "b": None, "c": None}
    assert out["score_flags"] == {"a": False, "b": False, "c": False}


@pytest.mark.parametrize(
    ("mode", "flags"),
    [
        ("gte", [False, True, True]),
        ("gt", [False, False, True]),
        ("lte", [True, True, False]),
        ("lt", [True, False, False]),
    ],
)
def test_threshold_modes(mode: str, flags: list[bool]) -> None:
    responses = {str(v): LLMResponse(content="", metrics={"score": v}) for v in (2, 3, 4)}
    out = _extract(responses, threshold=3, threshold_mode=mode)
    assert list(out["score_flags"].values()) == flags


def test_criteria_filter_and_disabled_pattern() -> None:
    responses = {"a": LLMResponse(content="Score: 2"), "b": LLMResponse(content="Score: 3")}
    assert _extract(responses, criteria=["b"]) == {"scores": {"b": 3.0}}
    assert _extract(responses, pattern=None) == {"scores": {"a": None, "b": None}}


def test_a_bad_regex_is_rejected_with_its_reason() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        ScoreExtractor.Options(pattern="(unclosed")


def _records(rows: list[dict[str, Any]]) -> list[Record]:
    return [Record(row_id=str(i), inputs={}, metrics=m) for i, m in enumerate(rows)]


def test_score_stats_per_criterion_and_overall() -> None:
    a, b = [1.0, 2.0, 4.0, None], [3.0, 5.0, 5.0, 7.0]
    rows = [
        {"scores": {"a": x, "b": y}, "score_flags": {"a": x is not None and x >= 2, "b": y >= 5}}
        for x, y in zip(a, b, strict=True)
    ]
    out = ScoreStats(ScoreStats.Options()).finalize(_records(rows))
    sa = out["criteria"]["a"]
    assert (sa["count"], sa["missing"]) == (3, 1)
    assert sa["mean"] == pytest.approx(7 / 3)
    assert sa["std"] == pytest.approx(statistics.stdev([1, 2, 4]))
    assert (sa["median"], sa["min"], sa["max"]) == (2.0, 1.0, 4.0)
    assert sa["pass_rate"] == pytest.approx(2 / 4)  # a missing score counts as not passing
    t_low, t_high = t_dist.interval(0.95, 2, loc=7 / 3, scale=statistics.stdev([1, 2, 4]) / 3**0.5)
    assert sa["ci"] == pytest.approx([t_low, t_high])
    assert sa["ci_level"] == 0.95
    assert out["criteria"]["b"]["pass_rate"] == pytest.approx(3 / 4)
    overall = out["overall"]
    assert overall["count"] == 7
    assert overall["mean"] == pytest.approx(statistics.fmean([1, 2, 4, 3, 5, 5, 7]))
    assert overall["pass_rate"] == pytest.approx(5 / 8)


def test_score_stats_population_std_and_empty_input() -> None:
    rows = [{"scores": {"a": v}} for v in (1.0, 3.0)]
    out = ScoreStats(ScoreStats.Options(ddof=0)).finalize(_records(rows))
    assert out["criteria"]["a"]["std"] == pytest.approx(1.0)
    empty = ScoreStats(ScoreStats.Options()).finalize([])
    assert empty["criteria"] == {}
    assert empty["overall"]["count"] == 0
    assert empty["overall"]["mean"] is None
