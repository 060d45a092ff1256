"""``pairwise_judge`` through the real openai client against the LLM test server, its verdicts scripted by content.

The test server answers each experiment's prompt with ``Score: N`` and a line quoting the prompt, so a
variant whose prompt says GOOD gives responses that say GOOD; ``choose`` makes the judge pick the
response (A or B) that holds it, wherever it is shown. Without ``choose`` the judge always answers A:
a judge with total position bias.
"""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError

PREFERS_GOOD = {r"A: [^\n]*\n[^\n]*GOOD": "A", r"B: [^\n]*\n[^\n]*GOOD": "B"}


def _options(judge: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "experiments": [
            {"name": "base", "baseline": True},
            {"name": "good", "prompts": {"user": "GOOD {{ text }}"}},
        ],
        "comparisons": [{"plugin": "pairwise_judge", "options": {"json_schema": True, **(judge or {})}}],
        **more,
    }


def _cell(result: Any, variant: str = "good") -> dict[str, Any]:
    verdict = result.aggregates["comparisons"][variant]["pairwise_judge"]
    assert "error" not in verdict, verdict
    return dict(verdict)


def test_a_judge_that_prefers_the_variant_finds_it_better_whatever_the_order(run_judged: Any, server: Any) -> None:
    server.configure(choose=PREFERS_GOOD)
    out = _cell(run_judged(_options(), rows=30))
    cell = out["criteria"]["default"]
    assert (cell["pairs"], cell["variant_wins"], cell["baseline_wins"], cell["ties"]) == (30, 30, 0, 0)
    assert cell["variant_win_rate"] == 1.0
    assert cell["p_value"] == pytest.approx(2 * 0.5**30)
    assert cell["significant"] is True
    assert cell["direction"] == "higher"
    assert cell["win_rate_ci"][0] > 0.88
    shown_first = [v["shown_first"] for v in out["verdicts"]]
    assert 8 <= shown_first.count("variant") <= 22, "the order is drawn per row"
    bias = out["position_bias"]
    assert bias["first_wins"] == shown_first.count("variant"), "the variant won where it was first, and only there"
    assert bias["biased"] is False
    assert {v["winner"] for v in out["verdicts"]} == {"variant"}
    assert all(v["reasoning"].startswith("Judged ") for v in out["verdicts"])
    assert out["judge"]["calls"] == 30
    assert out["judge"]["cost"] > 0


def test_a_judge_that_always_picks_the_first_is_reported_as_biased_not_as_a_verdict(run_judged: Any) -> None:
    out = _cell(run_judged(_options(), rows=40))
    cell = out["criteria"]["default"]
    bias = out["position_bias"]
    assert bias["first_win_rate"] == 1.0
    assert bias["bias"] == 0.5
    assert bias["biased"] is True
    assert bias["p_value"] == pytest.approx(2 * 0.5**40)
    # with the order drawn per row, the first position's advantage is spread over both arms
    assert cell["variant_wins"] + cell["baseline_wins"] == 40
    assert cell["significant"] is False, cell


def test_both_orders_turns_a_position_biased_verdict_into_ties(run_judged: Any, server: Any) -> None:
    out = _cell(run_judged(_options({"both_orders": True}), rows=10))
    cell = out["criteria"]["default"]
    assert (cell["pairs"], cell["ties"], cell["inconsistent"], cell["variant_wins"]) == (10, 10, 10, 0)
    assert cell["variant_win_rate"] is None
    assert cell["significant"] is False
    assert out["judge"]["calls"] == 20
    server.reset()
    server.configure(choose=PREFERS_GOOD)
    cell = _cell(run_judged(_options({"both_orders": True, "seed": 1}), rows=10))["criteria"]["default"]
    assert (cell["variant_wins"], cell["inconsistent"]) == (10, 0), "a consistent judge agrees with itself both ways"


def test_the_order_follows_the_seed(run_judged: Any) -> None:
    first = [v["shown_first"] for v in _cell(run_judged(_options({"seed": 3}), rows=20))["verdicts"]]
    again = [v["shown_first"] for v in _cell(run_judged(_options({"seed": 3}), rows=20))["verdicts"]]
    other = [v["shown_first"] for v in _cell(run_judged(_options({"seed": 4}), rows=20))["verdicts"]]
    assert first == again
    assert first != other


def test_the_no_regression_gate_reads_the_pairwise_verdict(run_judged: Any, server: Any) -> None:
    server.configure(choose={r"A: [^\n]*\n[^\n]*GOOD": "B", r"B: [^\n]*\n[^\n]*GOOD": "A"})  # prefers the baseline
    gates = [{"gate": "no_regression", "comparison": "pairwise_judge"}]
    (gate,) = run_judged(_options(gates=gates), rows=12).metadata.gates
    assert not gate.passed
    assert gate.detail.startswith("good default: significantly lower than the baseline, p_adjusted 0.000488")


def test_the_judges_calls_are_answered_from_the_response_cache_on_a_second_run(
    run_judged: Any, server: Any, tmp_path: Any
) -> None:
    cache = {"utilities": [{"plugin": "response_cache", "options": {"path": str(tmp_path / "cache.sqlite")}}]}
    first = _cell(run_judged(_options(), rows=6, settings_extra=cache))
    sent = len(server.requests("/v1/chat/completions"))
    assert sent == 6 + 6 + 6
    again = _cell(run_judged(_options(), rows=6, settings_extra=cache))
    assert len(server.requests("/v1/chat/completions")) == sent, "nothing was asked twice"
    assert again["judge"]["cached"] == 6
    assert again["criteria"] == first["criteria"]


def test_a_bad_template_is_refused_naming_the_field(run_judged: Any, server: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        run_judged(_options({"user_prompt": "{{ first }} {{ thrid }}"}), rows=2)
    assert "orchestrator.options.comparisons[0].options.user_prompt" in str(caught.value)
    assert "'thrid'" in str(caught.value)
    assert server.requests("/v1/chat/completions") == []
