"""``rubric_judge`` through the real openai client against the LLM test server: scores, reasoning, refusals, cost."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError

SCALE = {"scale_min": 0, "scale_max": 10, "json_schema": True}


def _options(judge: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "row_plugins": [{"plugin": "rubric_judge", "options": {"rubric": "Is it useful?", **judge}}],
        "aggregators": [
            "judge_cost",
            "cost_summary",
            {"plugin": "score_stats", "options": {"source_field": "judge_scores", "flag_field": "judge_flags"}},
        ],
        **more,
    }


def test_scores_on_the_scale_with_reasoning_and_flags(run_judged: Any, server: Any) -> None:
    result = run_judged(_options({**SCALE, "threshold": 5}), rows=8)
    assert result.metadata.failed == 0
    judged = [r for r in server.requests("/v1/chat/completions") if "Rubric: Is it useful?" in r.prompt]
    assert len(judged) == 8, "one judge call per row"
    for record in result.records:
        score = record.metrics["judge_scores"]["default"]
        # what the server answered, read back from its own log of the judge's request
        (sent,) = [r for r in judged if record.outputs["response"] in r.prompt]
        body = sent.body
        assert body["response_format"]["json_schema"]["schema"]["properties"]["score"] == {"type": "integer"}
        assert score is not None
        assert 0 <= score <= 10
        assert score == int(score)
        assert record.metrics["judge_flags"]["default"] is (score >= 5)
        detail = record.metrics["judge_rubric"]
        assert detail["reasoning"]["default"].startswith("Judged ")
        assert detail["errors"] == {}
        assert detail["calls"] == 1
    stats = result.aggregates["experiments"]["default"]["aggregates"]["score_stats"]["overall"]
    assert stats["count"] == 8


def test_the_judges_cost_is_reported_apart_from_the_experiments(run_judged: Any) -> None:
    result = run_judged(_options(SCALE), rows=6)
    aggregates = result.aggregates["experiments"]["default"]["aggregates"]
    judge_total = aggregates["judge_cost"]["total"]
    assert judge_total["calls"] == 6
    assert judge_total["cost"] > 0
    per_row = [r.metrics["judge_rubric"]["cost"] for r in result.records]
    assert judge_total["cost"] == pytest.approx(sum(per_row))
    experiment_cost = sum(r.metrics["cost"] for r in result.records)
    assert aggregates["cost_summary"]["cost"]["total"] == pytest.approx(experiment_cost)
    # the run's ledger saw both: what it spent is the experiment's calls and the judge's together
    assert result.metadata.totals is not None
    assert result.metadata.totals.cost == pytest.approx(experiment_cost + judge_total["cost"])
    assert result.metadata.totals.llm_calls == 12


def test_a_reply_off_the_scale_is_asked_again_then_recorded_as_missing(
    run_judged: Any, server: Any, judge_llm: Any
) -> None:
    # json_object replies {"score": 0.xx, "rationale": ...}: off a 1-5 scale, and no "reasoning"
    judge = judge_llm()
    judge["options"]["response_format"] = {"type": "json_object"}
    result = run_judged(_options({"llm": judge, "retries": 2}), rows=3)
    assert result.metadata.failed == 0, "a refused verdict is a missing score, not a lost row"
    for record in result.records:
        assert record.metrics["judge_scores"] == {"default": None}
        detail = record.metrics["judge_rubric"]
        assert detail["calls"] == 3
        assert detail["errors"]["default"].startswith("score 0.")
        assert "is off the scale 1 to 5" in detail["errors"]["default"]
    judged = [r for r in server.requests("/v1/chat/completions") if "Rubric:" in r.prompt]
    assert len(judged) == 9, "each re-ask reached the server: a refused reply is never answered from the cache"


def test_a_reply_that_is_not_json_is_refused_naming_why(run_judged: Any) -> None:
    result = run_judged(_options({"retries": 0}), rows=2)
    for record in result.records:
        error = record.metrics["judge_rubric"]["errors"]["default"]
        assert error.startswith("not JSON (Expecting value at character 0): 'Score: 0.")
        assert record.metrics["judge_rubric"]["calls"] == 1


@pytest.mark.parametrize(
    ("judge", "where", "message"),
    [
        ({"scale_min": 5, "scale_max": 1}, "row_plugins[0].options", "scale_min (5) must be below scale_max (1)"),
        ({"threshold": 9}, "row_plugins[0].options", "threshold 9 is off the scale 1 to 5"),
        ({"user_prompt": "{{ nope }} {{ response }}"}, "row_plugins[0].options.user_prompt", "'nope'"),
        ({"llm": {"plugin": "opanai"}}, "row_plugins[0].options.llm", "unknown llm_client 'opanai'"),
        ({"rubric": ""}, "row_plugins[0].options.rubric", "at least 1 character"),
    ],
)
def test_bad_options_are_refused_before_any_call_naming_the_field(
    run_judged: Any, server: Any, judge: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        run_judged(_options(judge), rows=2)
    text = str(caught.value)
    assert f"orchestrator.options.{where}" in text
    assert message in text
    assert server.requests("/v1/chat/completions") == []


def test_a_resumed_run_does_not_ask_the_judge_again_for_finished_rows(run_judged: Any, server: Any) -> None:
    from elspeth.resume import RunOptions

    server.script(["400"], match="Rate: item number 3")  # that row's own call fails, so the run can resume it
    first = run_judged(_options(SCALE), rows=5, run_options=RunOptions())
    assert first.metadata.failed == 1
    judged = [r for r in server.requests("/v1/chat/completions") if "Rubric:" in r.prompt and r.status == 200]
    assert len(judged) == 4
    server.reset()
    again = run_judged(_options(SCALE), rows=5, run_options=RunOptions(resume=first.metadata.run_id, retry_errors=True))
    assert again.metadata.failed == 0
    sent = [r.prompt for r in server.requests("/v1/chat/completions")]
    assert len(sent) == 2, "only the failed row is asked again: its own call, then its judge"
    assert all("item number 3" in prompt for prompt in sent)
    scores = {r.row_id: r.metrics["judge_scores"]["default"] for r in again.records}
    assert set(scores) == {"r00", "r01", "r02", "r03", "r04"}
    assert scores == {r.row_id: r.metrics["judge_scores"]["default"] for r in first.records} | {"r03": scores["r03"]}
