"""Quality gates: each kind passes and fails on real suite figures, and bad gates are refused before any row."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError

SCORING = {
    "row_plugins": [{"plugin": "score_extractor", "options": {"threshold": 3}}],
    "aggregators": ["score_stats"],
}


def _suite(variant: dict[str, Any], gates: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        **SCORING,
        "experiments": [
            {"name": "base", "baseline": True, "llm_options": {"score": 4, "cost": 0.01}},
            {"name": "variant", "llm_options": {"cost": 0.01, **variant}},
        ],
        "gates": gates,
        **more,
    }


def test_mean_and_pass_rate_gates_state_each_experiments_figure(run_suite: Any) -> None:
    gates = [
        {"gate": "mean", "at_least": 3.5},
        {"gate": "pass_rate", "at_least": 0.9, "experiments": ["base"]},
        {"gate": "pass_rate", "at_least": 0.5, "experiments": ["variant"], "name": "variant passes"},
    ]
    result = run_suite(_suite({"score": 2}, gates), rows=5)
    mean, base_rate, variant_rate = result.metadata.gates
    assert (mean.passed, base_rate.passed, variant_rate.passed) == (False, True, False)
    assert mean.name == "mean >= 3.5"
    assert mean.detail == "base: mean 4 >= 3.5; variant: mean 2 < 3.5"
    assert mean.figures == {"base.mean": 4.0, "variant.mean": 2.0, "at_least": 3.5}
    assert mean.where == "orchestrator.options.gates[0]"
    assert base_rate.figures == {"base.pass_rate": 1.0, "at_least": 0.9}
    assert variant_rate.name == "variant passes"
    assert variant_rate.detail == "variant: pass_rate 0 < 0.5"
    assert [g.name for g in result.metadata.failed_gates] == ["mean >= 3.5", "variant passes"]
    assert result.aggregates["gates"][1] == base_rate.to_dict()
    assert result.metadata.to_dict()["gates"][0]["passed"] is False
    assert result.metadata.status == "completed", "a failed gate does not change how the run ended"


def test_a_gate_on_a_criterion_reads_that_criterions_figure(run_suite: Any) -> None:
    options = _suite({"score": 2}, [{"gate": "mean", "at_least": 3, "criterion": "tone", "experiments": ["base"]}])
    options["criteria"] = [{"name": "tone"}, {"name": "facts"}]
    (gate,) = run_suite(options, rows=3).metadata.gates
    assert gate.passed
    assert gate.name == "mean of tone >= 3 (base)"
    assert gate.figures["base.mean"] == 4.0


def test_cost_gate_adds_every_row_of_every_experiment(run_suite: Any) -> None:
    result = run_suite(
        _suite({"score": 4}, [{"gate": "cost", "at_most": 0.1}, {"gate": "cost", "at_most": 0.05}]), rows=4
    )
    within, over = result.metadata.gates
    assert within.passed
    assert not over.passed
    assert within.figures["cost"] == pytest.approx(0.08)
    assert over.detail == "cost 0.08 > 0.05 over 8 rows"


def test_a_cost_gate_fails_when_no_cost_was_recorded(run_suite: Any) -> None:
    options = {**SCORING, "gates": [{"gate": "cost", "at_most": 1}]}
    (gate,) = run_suite(options, rows=2).metadata.gates
    assert not gate.passed
    assert gate.figures == {"at_most": 1.0, "cost": None}
    assert "no row carried a cost" in gate.detail


def test_a_mean_gate_with_no_scores_fails_and_says_why(run_suite: Any) -> None:
    options = {"aggregators": ["score_stats"], "gates": [{"gate": "mean", "at_least": 1}]}
    (gate,) = run_suite(options, rows=2, llm={"plugin": "echo"}).metadata.gates
    assert not gate.passed
    assert gate.detail == "default: mean unknown (no scores)"


def _gauss_suite(variant_mean: float, gates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "row_plugins": [{"plugin": "score_extractor", "options": {"threshold": 4.5}}],
        "aggregators": ["score_stats"],
        "comparisons": ["score_significance"],
        "experiments": [
            {"name": "base", "baseline": True},
            {"name": "worse", "llm_options": {"mean": variant_mean, "seed": 1}},
        ],
        "gates": gates,
    }


def test_no_regression_fails_on_a_significantly_worse_variant(run_suite: Any) -> None:
    options = _gauss_suite(3.5, [{"gate": "no_regression"}])
    result = run_suite(options, rows=30, llm={"plugin": "gauss", "options": {"row_sd": 1.0, "sd": 0.5}})
    (gate,) = result.metadata.gates
    assert not gate.passed
    cell = result.aggregates["comparisons"]["worse"]["score_significance"]["criteria"]["default"]
    assert gate.figures["worse.default.mean.difference"] == cell["mean_difference"] < -1
    assert gate.figures["worse.default.mean.p_adjusted"] == cell["p_adjusted"] < 0.05
    assert gate.figures["worse.default.pass_rate.p_adjusted"] == cell["mcnemar"]["p_adjusted"] < 0.05
    assert gate.detail.startswith("worse default: mean lower than the baseline by 1.")
    assert "worse default: pass rate lower" in gate.detail, "McNemar's significant drop counts too"


def test_no_regression_passes_when_the_variant_is_better_and_worse_says_which_way(run_suite: Any) -> None:
    gates = [{"gate": "no_regression"}, {"gate": "no_regression", "worse": "higher", "name": "not higher"}]
    options = _gauss_suite(6.0, gates)
    result = run_suite(options, rows=30, llm={"plugin": "gauss", "options": {"row_sd": 1.0, "sd": 0.5}})
    lower, higher = result.metadata.gates
    assert lower.passed
    assert lower.detail == "no variant is significantly worse than the baseline"
    assert not higher.passed
    assert higher.detail.startswith("worse default: mean higher than the baseline")


@pytest.mark.parametrize(
    ("gate", "more", "where", "message"),
    [
        (
            {"gate": "mean", "at_least": 1, "experiments": ["nope"]},
            {},
            "gates[0].experiments[0]",
            "no experiment 'nope'",
        ),
        ({"gate": "no_regression"}, {}, "gates[0].comparison", "'score_significance' is not in `comparisons`"),
        (
            {"gate": "no_regression", "variants": ["base"]},
            {"comparisons": ["score_significance"]},
            "gates[0].variants[0]",
            "no variant 'base'; the variants are 'variant'",
        ),
        ({"gate": "pass_rate", "at_least": 1}, {"aggregators": []}, "gates[0].gate", "add `score_stats`"),
    ],
)
def test_a_gate_that_cannot_be_evaluated_is_refused_before_any_row(
    run_suite: Any, gate: dict[str, Any], more: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        run_suite(_suite({}, [gate], **more), rows=2)
    text = str(caught.value)
    assert f"orchestrator.options.{where}" in text
    assert message in text


@pytest.mark.parametrize(
    ("gate", "where"),
    [
        ({"gate": "mean"}, "gates[0].mean.at_least"),
        ({"gate": "pass_rate", "at_least": 2}, "gates[0].pass_rate.at_least"),
        ({"gate": "cost", "at_most": -1}, "gates[0].cost.at_most"),
        ({"gate": "median", "at_least": 1}, "gates[0]"),
        ({"gate": "cost", "at_most": 1, "at_least": 2}, "gates[0].cost.at_least"),
    ],
)
def test_bad_gate_settings_name_the_field(run_suite: Any, gate: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        run_suite(_suite({}, [gate]), rows=2)
    assert f"orchestrator.options.{where}" in str(caught.value)
