"""Every statistic checked against scipy/numpy directly or against a published worked example."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from scipy import integrate, stats

from elspeth_experiment.plugins.significance import SignificanceOptions, analyse
from elspeth_experiment.stats import bayes, power
from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.descriptive import mean_ci, percentile

# Student (1908) / Cushny & Peebles sleep data, R's `sleep` data set: extra hours of sleep per patient.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
SLEEP_DIFF = [b - a for a, b in zip(SLEEP_1, SLEEP_2, strict=True)]


def test_percentile_matches_numpy() -> None:
    values = list(np.random.default_rng(4).exponential(size=37))
    for q in (0, 1, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(values, 101)


def test_mean_ci_matches_scipy_t_interval() -> None:
    values = [2.0, 4.0, 4.5, 7.0, 3.0, 5.5]
    low, high = stats.t.interval(0.95, 5, loc=np.mean(values), scale=stats.sem(values))
    assert mean_ci(values) == pytest.approx((low, high))
    assert mean_ci([1.0]) is None


def test_paired_t_on_the_sleep_data_matches_r() -> None:
    # R: t.test(sleep$extra[11:20], sleep$extra[1:10], paired = TRUE) -> t = 4.0621, df = 9, p = 0.002833
    res = fq.paired_t(SLEEP_DIFF)
    assert res is not None
    assert res.statistic == pytest.approx(4.0621, abs=1e-4)
    assert res.df == 9
    assert res.p_value == pytest.approx(0.002833, abs=1e-6)
    assert res.p_value == pytest.approx(stats.ttest_rel(SLEEP_2, SLEEP_1).pvalue)


def test_welch_on_the_sleep_data_matches_r() -> None:
    # R: t.test(extra ~ group, data = sleep) -> t = -1.8608, df = 17.776, p-value = 0.07939 (group 1 minus 2)
    res = fq.welch_t(SLEEP_1, SLEEP_2)
    assert res is not None
    assert res.statistic == pytest.approx(1.8608, abs=1e-4)
    assert res.df == pytest.approx(17.776, abs=1e-3)
    assert res.p_value == pytest.approx(0.07939, abs=1e-5)


def test_the_welch_interval_on_the_sleep_data_is_rs_with_the_sign_of_variant_minus_baseline() -> None:
    # R: t.test(extra ~ group, data = sleep) -> t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent confidence interval: -3.3654832 0.2054832 (mean of group 1 minus mean of group 2).
    # Elspeth reports variant minus baseline, so with group 1 as the baseline the signs flip and the ends swap.
    baseline = {f"g1-{i}": v for i, v in enumerate(SLEEP_1)}
    variant = {f"g2-{i}": v for i, v in enumerate(SLEEP_2)}
    cell = analyse(baseline, variant, SignificanceOptions(pairing="never", test="t"))
    assert cell["design"] == "unpaired"
    assert cell["mean_difference"] == pytest.approx(1.58)
    assert cell["ci"] == pytest.approx([-0.2054832, 3.3654832], abs=1e-7)
    assert cell["welch_t"]["statistic"] == pytest.approx(1.8608, abs=1e-4)
    assert cell["welch_t"]["df"] == pytest.approx(17.776, abs=1e-3)
    assert cell["p_value"] == pytest.approx(0.07939, abs=1e-5)
    swapped = analyse(variant, baseline, SignificanceOptions(pairing="never", test="t"))
    assert swapped["ci"] == pytest.approx([-3.3654832, 0.2054832], abs=1e-7)  # R's orientation exactly
    assert swapped["welch_t"]["statistic"] == pytest.approx(-1.8608, abs=1e-4)


def test_mcnemar_matches_rs_worked_example_on_agrestis_approval_data() -> None:
    # Agresti (1990/2002), presidential approval in two surveys of the same 1600 people: 794 approve both
    # times, 150 approve then disapprove, 86 disapprove then approve, 570 disapprove both times. R's
    # ?mcnemar.test runs this table: "McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05" (with
    # the continuity correction, which Elspeth applies at 25 or more discordant pairs). Agresti's own
    # figure, 17.36 (z = 4.17), is the uncorrected (150 - 86)^2 / 236, which Elspeth does not report.
    res = fq.mcnemar(150, 86)
    assert res is not None
    assert res.method == "McNemar chi-square, continuity corrected"
    assert res.statistic == pytest.approx(16.818, abs=5e-4)
    assert res.df == 1
    assert res.p_value == pytest.approx(4.115e-05, abs=5e-9)
    assert round((150 - 86) ** 2 / 236, 2) == 17.36  # Agresti's uncorrected value, for the record
    assert res.statistic < 17.36


# Lakens (2013), "Calculating and reporting effect sizes to facilitate cumulative science", Front. Psychol.
# 4:863, Table 1: ratings of two movies by the same ten people. Published: independent t(18) = 2.52 and
# Cohen's d_s = 1.13; dependent t(9) = 4.74 and Cohen's d_z = 1.50.
MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]


def test_cohens_d_matches_lakens_published_example() -> None:
    d_s = fq.cohens_d_pooled(MOVIE_2, MOVIE_1)
    assert d_s == pytest.approx(1.13, abs=0.005)
    welch = fq.welch_t(MOVIE_2, MOVIE_1)  # with equal group sizes Welch's statistic is Student's
    assert welch is not None
    assert welch.statistic == pytest.approx(2.52, abs=0.005)
    diffs = [a - b for a, b in zip(MOVIE_1, MOVIE_2, strict=True)]
    assert fq.cohens_dz(diffs) == pytest.approx(1.50, abs=0.005)
    paired = fq.paired_t(diffs)
    assert paired is not None
    assert paired.statistic == pytest.approx(4.74, abs=0.005)


def test_rank_tests_match_scipy() -> None:
    w = fq.wilcoxon(SLEEP_DIFF)
    assert w is not None
    assert w.p_value == pytest.approx(stats.wilcoxon(SLEEP_DIFF).pvalue)
    u = fq.mann_whitney(SLEEP_1, SLEEP_2)
    assert u is not None
    ref = stats.mannwhitneyu(SLEEP_2, SLEEP_1, alternative="two-sided")
    assert (u.statistic, u.p_value) == pytest.approx((ref.statistic, ref.pvalue))


def test_differences_without_spread_are_decided_not_dropped() -> None:
    # Changed by issue 16, point 1: this test used to assert that paired_t returns None for constant
    # differences, which reported "every score 3 became 4" as not significant. A constant non-zero
    # difference is a certain effect (p = 0, no finite statistic); no difference at all is p = 1.
    certain = fq.paired_t([0.5, 0.5, 0.5])
    assert certain is not None
    assert (certain.statistic, certain.p_value, certain.df) == (None, 0.0, 2)
    assert "exactly +0.5, a certain effect" in certain.method
    identical = fq.paired_t([0.0, 0.0, 0.0])
    assert identical is not None
    assert (identical.statistic, identical.p_value) == (0.0, 1.0)
    wilcoxon_zero = fq.wilcoxon([0.0, 0.0])
    assert wilcoxon_zero is not None
    assert wilcoxon_zero.p_value == 1.0
    welch_same = fq.welch_t([1.0, 1.0], [1.0, 1.0])
    assert welch_same is not None
    assert welch_same.p_value == 1.0
    welch_shift = fq.welch_t([1.0, 1.0], [2.0, 2.0])
    assert welch_shift is not None
    assert welch_shift.p_value == 0.0
    assert fq.paired_t([1.0]) is None  # too few values is still no test
    assert fq.cohens_dz([2.0, 2.0]) is None  # an effect size over no spread stays undefined


def test_mcnemar_exact_and_chi_square_match_scipy() -> None:
    exact = fq.mcnemar(3, 10)
    assert exact is not None
    assert exact.method == "McNemar exact binomial"
    assert exact.p_value == pytest.approx(stats.binomtest(3, 13, 0.5).pvalue)
    # Agresti (2002), Categorical Data Analysis, table 10.1 (presidential approval): 150 and 86 discordant pairs
    large = fq.mcnemar(150, 86)
    assert large is not None
    assert large.statistic == pytest.approx((64 - 1) ** 2 / 236)
    assert large.p_value == pytest.approx(stats.chi2.sf((64 - 1) ** 2 / 236, 1))
    # no discordant pair: no evidence of a difference, p = 1 in the Holm family (it used to be None, absent)
    none_discordant = fq.mcnemar(0, 0)
    assert none_discordant is not None
    assert none_discordant.p_value == 1.0


def test_effect_sizes() -> None:
    assert fq.cohens_dz(SLEEP_DIFF) == pytest.approx(statistics.fmean(SLEEP_DIFF) / statistics.stdev(SLEEP_DIFF))
    assert fq.cohens_dz(SLEEP_DIFF) == pytest.approx(1.2845, abs=1e-4)
    pooled = math.sqrt((statistics.variance(SLEEP_1) + statistics.variance(SLEEP_2)) / 2)
    assert fq.cohens_d_pooled(SLEEP_1, SLEEP_2) == pytest.approx((np.mean(SLEEP_2) - np.mean(SLEEP_1)) / pooled)
    pairs = list(itertools.product(SLEEP_1, SLEEP_2))
    brute = (sum(b > a for a, b in pairs) - sum(b < a for a, b in pairs)) / len(pairs)
    assert fq.cliffs_delta(SLEEP_1, SLEEP_2) == pytest.approx(brute)
    assert [fq.cliffs_label(d) for d in (0.1, -0.2, 0.4, 0.9)] == ["negligible", "small", "medium", "large"]


def test_bootstrap_is_seeded_and_matches_scipy_percentile_bootstrap() -> None:
    values = list(np.random.default_rng(1).normal(size=300))
    ours = fq.bootstrap_mean_ci(values, 0.95, 20_000, seed=3)
    ref = stats.bootstrap(
        (np.array(values),), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(3)
    ).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high))
    assert fq.bootstrap_mean_ci(values, 0.95, 20_000, seed=3) == ours
    assert fq.bootstrap_mean_ci(values, 0.95, 20_000, seed=4) != ours


def test_holm_matches_the_worked_example() -> None:
    # Holm (1979); the Wikipedia "Holm-Bonferroni method" example: p = .01, .04, .03, .005 -> reject 1 and 4 at .05
    adjusted = fq.holm([0.01, 0.04, 0.03, None, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert [p is not None and p < 0.05 for p in adjusted] == [True, False, False, False, True]


def test_required_n_matches_g_power() -> None:
    # G*Power 3 (Faul et al. 2007), two-tailed alpha .05, power .80: two groups d = .2/.5/.8 -> 394/64/26 per group;
    # one-sample (paired) d = .5 -> 34 with actual power 0.8077775
    assert [power.required_n(d, design="two_sample") for d in (0.2, 0.5, 0.8)] == [394, 64, 26]
    assert power.required_n(0.5, design="paired") == 34
    assert power.t_test_power(0.5, 34) == pytest.approx(0.8077775, abs=1e-6)
    assert power.required_n(0.0) is None


def test_paired_posterior_is_the_student_t_of_the_noninformative_prior() -> None:
    post = bayes.paired_posterior(SLEEP_DIFF)
    assert post is not None
    # under p(mu, sigma^2) ~ 1/sigma^2 the credible interval equals the classical t interval, and
    # P(mu > 0) = 1 - one-sided p; R gives the 95% interval 0.7001142 to 2.4598858 for the sleep data
    assert post.credible_interval == pytest.approx((0.7001142, 2.4598858), abs=1e-6)
    assert post.prob_variant_better == pytest.approx(1 - 0.002833 / 2, abs=1e-6)
    assert "1/sigma^2" in post.prior


def test_unpaired_posterior_matches_a_large_seeded_simulation() -> None:
    post = bayes.unpaired_posterior(SLEEP_1, SLEEP_2)
    assert post is not None
    rng = np.random.default_rng(0)

    def draws(values: list[float]) -> np.ndarray:
        n = len(values)
        return np.mean(values) + np.std(values, ddof=1) / math.sqrt(n) * rng.standard_t(n - 1, 400_000)

    diff = draws(SLEEP_2) - draws(SLEEP_1)
    assert post.prob_variant_better == pytest.approx(float(np.mean(diff > 0)), abs=3e-3)
    assert post.credible_interval == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])), abs=0.02)
    symmetric = bayes.unpaired_posterior([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert symmetric is not None
    assert symmetric.prob_variant_better == pytest.approx(0.5, abs=1e-6)


def _prob_greater_by_quad(av: float, bv: float, ab: float, bb: float) -> float:
    base, variant = stats.beta(ab, bb), stats.beta(av, bv)
    value, _ = integrate.quad(lambda x: base.pdf(x) * variant.sf(x), 0, 1)
    return float(value)


def test_beta_binomial_exact_sum_matches_numerical_integration() -> None:
    for av, bv, ab, bb in [(11, 5, 6, 10), (3, 30, 4, 29), (1, 1, 1, 1), (50, 51, 45, 56)]:
        expected = _prob_greater_by_quad(av, bv, ab, bb)
        assert bayes.prob_beta_greater(av, bv, ab, bb) == pytest.approx(expected, abs=1e-8)
    post = bayes.beta_difference(5, 14, 10, 14)
    assert post.prob_variant_better == pytest.approx(bayes.prob_beta_greater(11, 5, 6, 10))
    rng = np.random.default_rng(1)
    diff = rng.beta(11, 5, 400_000) - rng.beta(6, 10, 400_000)
    assert post.credible_interval == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])), abs=3e-3)
    assert post.mean == pytest.approx(11 / 16 - 6 / 16)
