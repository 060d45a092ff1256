"""Truth check: a known effect is found with the right sign and size (no effect: ``test_false_positives.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

# gauss client: score = mean + row effect N(0, 1) shared by both experiments + noise N(0, 1) per experiment,
# so the paired differences are N(0.5, 2) and the true d_z is 0.5 / sqrt(2) = 0.354.
TRUE_DIFF, TRUE_DZ = 0.5, 0.5 / np.sqrt(2)


def test_a_known_effect_is_found_with_the_right_sign_and_size_end_to_end(run_suite: Any) -> None:
    result = run_suite(
        {
            "row_plugins": ["score_extractor"],
            "comparisons": ["score_significance", "score_bayes"],
            "experiments": [
                {"name": "base", "baseline": True},
                {"name": "better", "llm": {"plugin": "gauss", "options": {"mean": 5.5, "seed": 2}}},
                {"name": "same", "llm": {"plugin": "gauss", "options": {"mean": 5.0, "seed": 3}}},
            ],
        },
        llm={"plugin": "gauss", "options": {"mean": 5.0, "seed": 1}},
        rows=200,
        concurrency=16,
    )
    better = result.aggregates["comparisons"]["better"]["score_significance"]["criteria"]["default"]
    assert better["design"] == "paired"
    assert better["n"] == 200
    assert better["significant"] is True
    assert better["direction"] == "higher"
    assert better["family_size"] == 2  # two variants x one criterion, Holm-adjusted together
    assert better["p_adjusted"] >= better["p_value"]
    low, high = better["ci"]
    assert low < TRUE_DIFF < high
    assert low > 0
    assert better["cohens_d"] == pytest.approx(TRUE_DZ, abs=0.12)
    same = result.aggregates["comparisons"]["same"]["score_significance"]["criteria"]["default"]
    assert same["significant"] is False
    assert same["ci"][0] < 0 < same["ci"][1]
    bayes = result.aggregates["comparisons"]["better"]["score_bayes"]["criteria"]["default"]
    assert bayes["mean_difference"]["prob_variant_better"] > 0.99
    assert bayes["mean_difference"]["credible_interval"][0] > 0
