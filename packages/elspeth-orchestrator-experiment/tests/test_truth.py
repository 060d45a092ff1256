"""Truth check: a known effect is found with the right sign and size; no effect gives about 5% false positives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from elspeth_experiment.plugins.significance import SignificanceOptions, analyse
from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.bayes import paired_posterior

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


def test_false_positive_rate_under_no_effect_is_near_alpha() -> None:
    """250 simulated suites with no true effect: each decision rule rejects in 2% to 8% of them."""
    rng = np.random.default_rng(20240601)
    opts = SignificanceOptions(bootstrap_resamples=1000, seed=0)
    n, sims = 40, 250
    ids = [str(i) for i in range(n)]
    hits = dict.fromkeys(("paired_t", "wilcoxon", "bootstrap", "bayes", "welch", "mann_whitney"), 0)
    holm_any = 0
    for _ in range(sims):
        row = rng.normal(0, 1, n)  # the row effect both experiments share: a paired design
        base, variant = row + rng.normal(0, 1, n), row + rng.normal(0, 1, n)
        cell = analyse(dict(zip(ids, base, strict=True)), dict(zip(ids, variant, strict=True)), opts)
        hits["paired_t"] += cell["p_value"] < 0.05
        hits["wilcoxon"] += cell["wilcoxon"]["p_value"] < 0.05
        hits["bootstrap"] += not cell["ci"][0] <= 0 <= cell["ci"][1]
        post = paired_posterior(list(variant - base))
        assert post is not None
        hits["bayes"] += not 0.025 <= post.prob_variant_better <= 0.975
        # unpaired tests are judged on independent groups, the design they are for
        a, b = list(rng.normal(0, 1, n)), list(rng.normal(0, 1, n))
        unpaired = analyse(dict(zip(ids, a, strict=True)), {f"v{i}": x for i, x in enumerate(b)}, opts)
        assert unpaired["design"] == "unpaired"
        hits["welch"] += unpaired["p_value"] < 0.05
        hits["mann_whitney"] += unpaired["mann_whitney"]["p_value"] < 0.05
        # Holm over a family of three null variants keeps the family-wise error at or below alpha
        family = [cell["p_value"]]
        for _ in range(2):
            other = fq.paired_t(list(row + rng.normal(0, 1, n) - base))
            assert other is not None
            family.append(other.p_value)
        holm_any += any(p is not None and p < 0.05 for p in fq.holm(family))
    rates = {k: v / sims for k, v in hits.items()}
    for name, rate in rates.items():
        assert 0.02 <= rate <= 0.08, (name, rates)
    assert holm_any / sims <= 0.08
