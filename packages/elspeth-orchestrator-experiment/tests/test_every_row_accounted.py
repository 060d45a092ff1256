"""Issue 16, point 1: every row of a comparison accounted for, one missing-score rule, decided edge cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from scipy import stats

from elspeth import Failure, Record
from elspeth_experiment.plugins.significance import ScoreSignificance, SignificanceOptions
from elspeth_experiment.protocols import ExperimentResult


def _result(
    name: str,
    scores: dict[str, float | None],
    failed: Sequence[str] = (),
    flags: dict[str, bool] | None = None,
    **extra: Any,
) -> ExperimentResult:
    records = []
    for row_id, score in scores.items():
        metrics: dict[str, Any] = {"scores": {"q": score}}
        if flags is not None:
            metrics["score_flags"] = {"q": flags[row_id]}
        records.append(Record(row_id=row_id, inputs={}, metrics=metrics))
    failures = [Failure(row_id=i, inputs={}, stage="validation", error="rejected") for i in failed]
    return ExperimentResult(name, name == "base", records, failures, **extra)


def _cell(base: ExperimentResult, variant: ExperimentResult, **options: Any) -> dict[str, Any]:
    result = ScoreSignificance(SignificanceOptions(**options)).compare_all(base, [variant])
    return dict(result[variant.name]["criteria"]["q"])


def test_a_constant_shift_is_a_certain_effect_not_not_significant() -> None:
    rng = np.random.default_rng(0)
    scores = {f"r{i}": float(s) for i, s in enumerate(rng.integers(1, 5, 40))}
    cell = _cell(_result("base", scores), _result("up", {k: v + 1 for k, v in scores.items()}))
    assert cell["p_value"] == 0.0
    assert cell["significant"] is True
    assert cell["direction"] == "higher"
    assert cell["ci"] == [1.0, 1.0]
    assert "every row differs by exactly +1, a certain effect" in cell["test"]
    assert cell["ci_method"] == "exact: every row's difference is the same"


def test_identical_arms_are_p_one_and_stay_in_the_holm_family() -> None:
    rng = np.random.default_rng(1)
    scores = {f"r{i}": float(s) for i, s in enumerate(rng.normal(5, 1, 30))}
    shifted = {k: v + (0.8 if i % 2 else 0.6) for i, (k, v) in enumerate(scores.items())}
    base = _result("base", scores)
    out = ScoreSignificance(SignificanceOptions()).compare_all(base, [_result("same", scores), _result("up", shifted)])
    same, up = out["same"]["criteria"]["q"], out["up"]["criteria"]["q"]
    assert same["p_value"] == 1.0
    assert same["family_size"] == up["family_size"] == 2
    assert up["p_adjusted"] == pytest.approx(min(1.0, 2 * up["p_value"]))  # Holm over two, not one


def test_rows_failed_in_one_arm_are_counted_and_the_itt_line_undoes_the_flattering_drop() -> None:
    # the case: no true effect, but the variant's validator rejects its low scores (they fail)
    rng = np.random.default_rng(2)
    ids = [f"r{i}" for i in range(400)]
    row = rng.normal(5, 1, 400)
    base_scores = dict(zip(ids, (row + rng.normal(0, 0.5, 400)).tolist(), strict=True))
    var_all = dict(zip(ids, (row + rng.normal(0, 0.5, 400)).tolist(), strict=True))
    rejected = [i for i in ids if var_all[i] < 4.5]
    kept = {i: v for i, v in var_all.items() if i not in rejected}
    cell = _cell(_result("base", base_scores), _result("variant", kept, failed=rejected))
    rows = cell["rows"]
    assert rows["used"] == cell["n"] == 400 - len(rejected)
    assert rows["baseline"] == {
        "scored": 400,
        "used": rows["used"],
        "failed": 0,
        "missing_score": 0,
        "not_run": 0,
        "unpaired": len(rejected),
    }
    assert rows["variant"]["failed"] == len(rejected)
    assert rows["variant"]["unpaired"] == 0
    assert "paired on the rows both experiments scored" in rows["rule"]
    assert cell["significant"]
    assert cell["mean_difference"] > 0
    itt = cell["itt"]
    worst = min(*base_scores.values(), *kept.values())
    assert itt["worst_score"] == worst
    assert itt["imputed"] == {"baseline": 0, "variant": len(rejected)}
    assert itt["n"] == 400
    imputed = np.array([kept.get(i, worst) for i in ids]) - np.array([base_scores[i] for i in ids])
    assert itt["mean_difference"] == pytest.approx(float(imputed.mean()), abs=1e-12)
    assert itt["p_value"] == pytest.approx(stats.ttest_1samp(imputed, 0.0).pvalue, rel=1e-10)
    assert itt["mean_difference"] < 0
    assert itt["agrees"] is False


def test_pairing_is_by_design_five_shared_ids_do_not_switch_the_test() -> None:
    rng = np.random.default_rng(3)
    base = {f"b{i}": float(v) for i, v in enumerate(rng.normal(0, 1, 995))}
    variant = {f"v{i}": float(v) for i, v in enumerate(rng.normal(1, 1, 995))}
    for i in range(5):
        base[f"s{i}"], variant[f"s{i}"] = float(i), float(i) + rng.normal(0, 1)
    cell = _cell(_result("base", base), _result("variant", variant))
    assert cell["design"] == "paired"
    assert cell["n"] == 5
    assert cell["rows"]["baseline"]["unpaired"] == 995 == cell["rows"]["variant"]["unpaired"]
    without_s0 = [{k: v for k, v in arm.items() if k != "s0"} for arm in (base, variant)]
    four = _cell(_result("base", without_s0[0]), _result("variant", without_s0[1]))
    assert four["design"] == "paired"
    assert four["p_value"] is None
    assert "4 rows scored in both experiments, at least 5 needed" in four["warning"]
    apart = _cell(
        _result("base", {k: v for k, v in base.items() if k[0] == "b"}),
        _result("variant", {k: v for k, v in variant.items() if k[0] == "v"}),
    )
    assert "set pairing: never for independent samples" in apart["warning"]
    never = _cell(_result("base", base), _result("variant", variant), pairing="never")
    assert never["design"] == "unpaired"
    assert never["n_baseline"] == never["n_variant"] == 1000


def test_a_missing_score_is_missing_in_mcnemar_not_a_fail_and_a_fail_in_its_itt_line() -> None:
    ids = [f"r{i}" for i in range(30)]
    base = {i: 1.0 for i in ids}
    variant: dict[str, float | None] = {i: (None if n < 10 else 1.0) for n, i in enumerate(ids)}
    # the variant's unscored rows carry a False flag, as score_extractor writes it: it must not count as a fail
    cell = _cell(
        _result("base", base, flags=dict.fromkeys(ids, True)),
        _result("variant", variant, flags={i: variant[i] is not None for i in ids}),
    )
    mcnemar = cell["mcnemar"]
    assert (mcnemar["n"], mcnemar["pass_to_fail"], mcnemar["fail_to_pass"]) == (20, 0, 0)
    assert mcnemar["p_value"] == 1.0
    assert mcnemar["difference"] == 0.0
    assert mcnemar["rows"]["variant"]["missing_score"] == 10
    assert cell["rows"]["variant"]["missing_score"] == 10
    itt = mcnemar["itt"]
    assert (itt["n"], itt["pass_to_fail"], itt["fail_to_pass"]) == (30, 10, 0)
    assert itt["p_value"] == pytest.approx(stats.binomtest(0, 10, 0.5).pvalue, rel=1e-10)
    assert itt["difference"] == pytest.approx(-1 / 3)


def test_an_early_stop_marks_the_comparison_as_not_holding() -> None:
    rng = np.random.default_rng(4)
    scores = {f"r{i}": float(v) for i, v in enumerate(rng.normal(5, 1, 20))}
    stop = {"reason": "mean of scores.q is 4.1, lt 4.5"}
    stopped = _result("variant", {k: v + 0.1 for k, v in scores.items()}, early_stop=stop, rows_not_run=80)
    cell = _cell(_result("base", scores), stopped)
    assert cell["p_values_hold"] is False
    assert (
        "'variant' stopped early by a rule that watched the data (mean of scores.q is 4.1, lt 4.5)" in cell["warning"]
    )
    assert "do not hold" in cell["warning"]
    assert cell["rows"]["variant"]["not_run"] == 80
    assert _cell(_result("base", scores), _result("v2", scores))["p_values_hold"] is True


def test_a_validator_that_rejects_low_scores_is_seen_in_a_real_suite(run_suite: Any) -> None:
    suite = run_suite(
        {
            "row_plugins": [{"plugin": "score_extractor"}],
            "comparisons": [{"plugin": "score_significance"}],
            "experiments": [
                {"name": "base", "baseline": True},
                {
                    "name": "picky",
                    "llm": {"plugin": "gauss", "options": {"mean": 5.0, "seed": 2}},
                    "validators": [
                        {"plugin": "regex_match", "options": {"pattern": r"Score: ([5-9]|\d\d)", "mode": "search"}}
                    ],
                },
            ],
        },
        llm={"plugin": "gauss", "options": {"mean": 5.0, "seed": 1}},
        rows=120,
        concurrency=8,
    )
    cell = suite.aggregates["comparisons"]["picky"]["score_significance"]["criteria"]["default"]
    failed = cell["rows"]["variant"]["failed"]
    assert failed > 20
    assert cell["rows"]["used"] == 120 - failed
    assert cell["itt"]["imputed"]["variant"] == failed
    assert cell["itt"]["mean_difference"] < cell["mean_difference"]


@pytest.mark.parametrize(
    ("base_ids", "var_ids"),
    [
        (["r2", "r0", "r1"], ["r0", "r9", "r1", "r2"]),  # reordered, one row the baseline never took
        (["a", "b", "a"], ["a", "b"]),  # a duplicate id: the last of them wins, as a dict would say
        ([-2, 5], [-1, 5]),  # hash(-1) == hash(-2): equal hashes, different ids, never paired
        ([-1, -2, 3], [-2, 3, -1]),  # colliding hashes within the baseline
        ([1, "1", 2.0], ["1", 2, 1]),  # mixed types: 2 == 2.0 pairs as a dict pairs them
        ([], ["x"]),
        (["x"], []),
    ],
)
def test_ids_are_matched_exactly_as_a_dict_of_the_baselines_ids_matches_them(
    base_ids: list[Any], var_ids: list[Any]
) -> None:
    from elspeth_experiment.plugins._rows import _positions

    position = {row_id: i for i, row_id in enumerate(base_ids)}
    assert _positions(base_ids, var_ids).tolist() == [position.get(row_id, -1) for row_id in var_ids]


def test_matching_shuffled_ids_agrees_with_a_dict() -> None:
    from elspeth_experiment.plugins._rows import _positions

    rng = np.random.default_rng(3)
    base_ids = [f"row-{i}" for i in range(200_000)]
    var_ids = [base_ids[i] for i in rng.permutation(200_000)[:150_000]] + [f"new-{i}" for i in range(1000)]
    position = {row_id: i for i, row_id in enumerate(base_ids)}
    assert _positions(base_ids, var_ids).tolist() == [position.get(row_id, -1) for row_id in var_ids]
