"""``score_bayes`` against its models sampled directly: the joint posterior of (mu, sigma^2), and Beta posteriors.

Under the prior p(mu, sigma^2) ∝ 1/sigma^2 and normal data with mean ybar, SD s and n values, the joint
posterior is sigma^2 ~ scaled-Inv-chi^2(n - 1, s^2) and mu | sigma^2 ~ Normal(ybar, sigma^2 / n) (Gelman
et al., BDA3 §3.2). The draws below follow that recipe with numpy alone; nothing in them uses Student's t.
Each comparison allows four Monte Carlo standard errors, the one of a quantile estimated from batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from elspeth import Record
from elspeth_experiment.plugins.bayes import ScoreBayes
from elspeth_experiment.protocols import ExperimentResult

DRAWS, BATCHES = 1_000_000, 40
TAILS = (0.025, 0.975)


def _experiment(name: str, values: dict[str, float | bool], key: str, baseline: bool = False) -> ExperimentResult:
    records = [Record(row_id=i, inputs={}, metrics={key: {"q": v}}) for i, v in values.items()]
    return ExperimentResult(name, baseline, records)


def _joint_posterior_of_the_mean(values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Draws of mu: sigma^2 = (n - 1) s^2 / chi^2_{n-1}, then mu ~ Normal(ybar, sigma^2 / n)."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    sigma2 = (n - 1) * y.var(ddof=1) / rng.chisquare(n - 1, DRAWS)
    return rng.normal(y.mean(), np.sqrt(sigma2 / n))


def _check(posterior: dict[str, Any], draws: np.ndarray) -> None:
    """P(draw > 0) and the 95% equal-tailed interval agree with the draws within four Monte Carlo errors."""
    p = float(np.mean(draws > 0))
    p_error = max(np.sqrt(p * (1 - p) / len(draws)), 1 / len(draws))
    assert posterior["prob_variant_better"] == pytest.approx(p, abs=4 * p_error)
    batches = np.quantile(draws.reshape(BATCHES, -1), TAILS, axis=1)  # shape (2, BATCHES)
    errors = batches.std(axis=1, ddof=1) / np.sqrt(BATCHES)
    quantiles = np.quantile(draws, TAILS)
    for ours, theirs, error in zip(posterior["credible_interval"], quantiles, errors, strict=True):
        assert ours == pytest.approx(float(theirs), abs=4 * float(error))
    assert posterior["mean"] == pytest.approx(float(draws.mean()), abs=4 * float(draws.std() / np.sqrt(len(draws))))


def test_the_paired_posterior_is_the_joint_normal_posterior_of_the_differences() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(5, 1, 12)
    variant = base + rng.normal(0.25, 0.8, 12)
    ids = [f"r{i}" for i in range(12)]
    result = ScoreBayes(ScoreBayes.Options()).compare(
        _experiment("base", dict(zip(ids, base, strict=True)), "scores", baseline=True),
        _experiment("variant", dict(zip(ids, variant, strict=True)), "scores"),
    )
    cell = result["criteria"]["q"]
    assert cell["design"] == "paired"
    draws = _joint_posterior_of_the_mean(variant - base, np.random.default_rng(1))
    assert 0.6 < float(np.mean(draws > 0)) < 0.99  # not a foregone conclusion: the check has room to fail
    _check(cell["mean_difference"], draws)


def test_the_unpaired_posterior_is_the_difference_of_two_joint_posteriors() -> None:
    rng = np.random.default_rng(12)
    base, variant = rng.normal(5, 0.5, 8), rng.normal(5.6, 2.0, 14)  # unequal spreads and sizes
    result = ScoreBayes(ScoreBayes.Options(pairing="never")).compare(
        _experiment("base", {f"b{i}": v for i, v in enumerate(base)}, "scores", baseline=True),
        _experiment("variant", {f"v{i}": v for i, v in enumerate(variant)}, "scores"),
    )
    cell = result["criteria"]["q"]
    assert (cell["design"], cell["n_baseline"], cell["n_variant"]) == ("unpaired", 8, 14)
    draws_rng = np.random.default_rng(2)
    draws = _joint_posterior_of_the_mean(variant, draws_rng) - _joint_posterior_of_the_mean(base, draws_rng)
    _check(cell["mean_difference"], draws)
    # Welch's t interval, relabelled as a credible interval, would not pass this check
    from scipy import stats

    se2 = base.var(ddof=1) / 8 + variant.var(ddof=1) / 14
    df = se2**2 / ((base.var(ddof=1) / 8) ** 2 / 7 + (variant.var(ddof=1) / 14) ** 2 / 13)
    welch_low = variant.mean() - base.mean() - stats.t.ppf(0.975, df) * np.sqrt(se2)
    assert abs(welch_low - np.quantile(draws, 0.025)) > 0.02
    assert cell["mean_difference"]["credible_interval"][0] == pytest.approx(np.quantile(draws, 0.025), abs=0.01)


def test_the_pass_rate_posterior_is_the_difference_of_two_beta_posteriors() -> None:
    base = {f"r{i}": i < 7 for i in range(20)}  # 7 of 20 pass
    variant = {f"r{i}": i < 12 for i in range(18)}  # 12 of 18 pass
    # Changed by issue 16, point 1: shared row ids are paired by design now (the next test); the model of
    # two independent Beta posteriors is for experiments over different rows, pairing: never
    result = ScoreBayes(ScoreBayes.Options(criteria=["q"], pairing="never")).compare(
        _experiment("base", base, "score_flags", baseline=True), _experiment("variant", variant, "score_flags")
    )
    rate = result["criteria"]["q"]["pass_rate"]
    assert (rate["n_baseline"], rate["n_variant"]) == (20, 18)
    rng = np.random.default_rng(3)
    draws = rng.beta(1 + 12, 1 + 6, DRAWS) - rng.beta(1 + 7, 1 + 13, DRAWS)  # Beta(1, 1) prior + binomial counts
    _check(rate, draws)
    # the normal-approximation (Wald) interval of the difference would not pass: the posterior is not it
    p_b, p_v = 7 / 20, 12 / 18
    wald_high = p_v - p_b + 1.959964 * np.sqrt(p_b * (1 - p_b) / 20 + p_v * (1 - p_v) / 18)
    assert abs(wald_high - np.quantile(draws, 0.975)) > 0.02


def test_the_paired_pass_rate_posterior_is_the_dirichlet_of_the_four_cells() -> None:
    # 40 paired rows: 20 pass in both, 4 pass to fail, 11 fail to pass, 5 fail in both
    cells = ["both"] * 20 + ["lost"] * 4 + ["gained"] * 11 + ["neither"] * 5
    base = {f"r{i}": c in ("both", "lost") for i, c in enumerate(cells)}
    variant = {f"r{i}": c in ("both", "gained") for i, c in enumerate(cells)}
    result = ScoreBayes(ScoreBayes.Options(criteria=["q"])).compare(
        _experiment("base", base, "score_flags", baseline=True), _experiment("variant", variant, "score_flags")
    )
    rate = result["criteria"]["q"]["pass_rate"]
    assert (rate["design"], rate["n"], rate["pass_to_fail"], rate["fail_to_pass"]) == ("paired", 40, 4, 11)
    shares = np.random.default_rng(4).dirichlet([1 + 20, 1 + 4, 1 + 11, 1 + 5], DRAWS)
    _check(rate, shares[:, 2] - shares[:, 1])
