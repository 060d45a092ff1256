"""The power warning: planned at ``min_effect`` (never the observed effect), shown exactly below the n required."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from elspeth_experiment.plugins.significance import SignificanceOptions, analyse
from elspeth_experiment.stats.power import required_n


def _paired(n: int, shift: float, seed: int = 0) -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, n)
    variant = base + shift + rng.normal(0, 1, n)
    return {str(i): float(v) for i, v in enumerate(base)}, {str(i): float(v) for i, v in enumerate(variant)}


def _power(n: int, shift: float = 0.0, **options: Any) -> dict[str, Any]:
    base, variant = _paired(n, shift)
    cell = analyse(base, variant, SignificanceOptions(bootstrap_resamples=100, **options))
    return dict(cell["power"])


def test_the_default_plans_for_an_effect_of_0_3_and_warns_below_the_pairs_it_needs() -> None:
    needed = required_n(0.3, 0.8, 0.05, "paired")
    assert needed == 90  # G*Power 3, one-sample t, two-tailed, d = 0.3, alpha .05, power .80
    power = _power(40)
    assert (power["effect"], power["effect_kind"], power["n_required"]) == (0.3, "d_z", 90)
    assert power["effect_source"].startswith("min_effect")
    assert power["warning"] == (
        "40 pairs is below the 90 needed for 80% power to detect an effect of 0.3 (d_z, the min_effect option); "
        "a non-significant result is weak evidence of no difference"
    )


def test_the_warning_appears_exactly_below_the_required_number_of_pairs() -> None:
    assert required_n(0.5, 0.8, 0.05, "paired") == 34
    assert _power(33, min_effect=0.5)["warning"] is not None
    assert _power(34, min_effect=0.5)["warning"] is None


def test_unpaired_rows_are_counted_per_experiment_using_the_smaller_group() -> None:
    assert required_n(0.5, 0.8, 0.05, "two_sample") == 64
    rng = np.random.default_rng(1)

    def cell(n_base: int, n_variant: int) -> dict[str, Any]:
        base = {f"b{i}": float(v) for i, v in enumerate(rng.normal(0, 1, n_base))}
        variant = {f"v{i}": float(v) for i, v in enumerate(rng.normal(0, 1, n_variant))}
        # Changed by issue 16, point 1: independent rows are unpaired by design (pairing: never); they used to
        # fall back to unpaired because fewer than min_samples ids matched, a count threshold.
        opts = SignificanceOptions(min_effect=0.5, bootstrap_resamples=100, pairing="never")
        return dict(analyse(base, variant, opts)["power"])

    assert cell(64, 64)["warning"] is None
    short = cell(63, 200)
    assert short["effect_kind"] == "d"
    assert short["warning"].startswith("63 rows per experiment is below the 64 needed")


def test_the_observed_effect_changes_nothing() -> None:
    # post-hoc power would call the large effect well powered and the null one hopeless; the plan does not move
    large, none = _power(40, shift=1.5), _power(40, shift=0.0)
    assert large == none
    assert large["warning"] is not None


def test_min_effect_must_be_a_positive_effect() -> None:
    with pytest.raises(ValidationError, match="min_effect"):
        SignificanceOptions(min_effect=0)


def test_the_warning_reaches_the_suite_result(run_suite: Any) -> None:
    result = run_suite(
        {
            "row_plugins": ["score_extractor"],
            "comparisons": [{"plugin": "score_significance", "options": {"bootstrap_resamples": 200}}],
            "experiments": [{"name": "base", "baseline": True}, {"name": "v", "llm_options": {"seed": 5}}],
        },
        llm={"plugin": "gauss"},
        rows=20,
    )
    cell = result.aggregates["comparisons"]["v"]["score_significance"]["criteria"]["default"]
    assert cell["power"]["n_required"] == 90
    assert cell["power"]["warning"].startswith("20 pairs is below the 90 needed")
