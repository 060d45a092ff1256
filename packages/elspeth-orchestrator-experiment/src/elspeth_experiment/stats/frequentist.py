"""Frequentist comparisons of two sets of scores: tests, effect sizes, bootstrap and Holm's correction.

Every test is two-sided. A test that is undefined for the data (no spread, too few values) returns
None rather than a number that would mislead.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "TestResult",
    "bootstrap_mean_ci",
    "cliffs_delta",
    "cliffs_label",
    "cohens_d_pooled",
    "cohens_dz",
    "holm",
    "mann_whitney",
    "mcnemar",
    "paired_t",
    "welch_t",
    "wilcoxon",
]

EXACT_MCNEMAR_BELOW = 25
"""McNemar uses the exact binomial test when fewer than this many pairs are discordant."""


@dataclass(frozen=True)
class TestResult:
    """A test's statistic, its p-value, and the degrees of freedom or method where they apply."""

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    p_value: float
    df: float | None = None
    method: str = ""

    def to_dict(self) -> dict[str, float | str | None]:
        """A JSON-ready copy."""
        return {"statistic": self.statistic, "p_value": self.p_value, "df": self.df, "method": self.method}


def _has_spread(values: Sequence[float]) -> bool:
    return len(values) >= 2 and max(values) > min(values)


def paired_t(diffs: Sequence[float]) -> TestResult | None:
    """Paired t-test: one-sample t-test of the differences against zero (None without spread)."""
    if not _has_spread(diffs):
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    res = stats.ttest_1samp(list(diffs), 0.0)
    return TestResult(float(res.statistic), float(res.pvalue), len(diffs) - 1, "paired t-test")


def welch_t(a: Sequence[float], b: Sequence[float]) -> TestResult | None:
    """Welch's unequal-variance t-test of ``b`` against ``a`` (None when either group lacks spread)."""
    if len(a) < 2 or len(b) < 2 or not (_has_spread(a) or _has_spread(b)):
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    res = stats.ttest_ind(list(b), list(a), equal_var=False)
    return TestResult(float(res.statistic), float(res.pvalue), df, "Welch t-test")


def wilcoxon(diffs: Sequence[float]) -> TestResult | None:
    """Wilcoxon signed-rank test of the differences (zeros dropped; None if none are left)."""
    if sum(1 for d in diffs if d != 0) < 1:
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    res = stats.wilcoxon(list(diffs), zero_method="wilcox", method="auto")
    return TestResult(float(res.statistic), float(res.pvalue), None, "Wilcoxon signed-rank")


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> TestResult | None:
    """Mann-Whitney U test; the statistic is U of ``b`` (None when either group is empty or all values tie)."""
    if not a or not b or not _has_spread([*a, *b]):
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    res = stats.mannwhitneyu(list(b), list(a), alternative="two-sided", method="auto")
    return TestResult(float(res.statistic), float(res.pvalue), None, "Mann-Whitney U")


def mcnemar(b: int, c: int) -> TestResult | None:
    """McNemar's test on the discordant pairs: ``b`` pass→fail, ``c`` fail→pass.

    Exact binomial (two-sided, p = 0.5) when ``b + c`` is below :data:`EXACT_MCNEMAR_BELOW`; otherwise
    the chi-square statistic with Edwards' continuity correction, (|b - c| - 1)² / (b + c), on one df.
    Returns None when no pair is discordant.
    """
    n = b + c
    if n == 0:
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    if n < EXACT_MCNEMAR_BELOW:
        p = float(stats.binomtest(min(b, c), n, 0.5).pvalue)
        return TestResult(float(min(b, c)), min(1.0, p), None, "McNemar exact binomial")
    chi2 = (abs(b - c) - 1) ** 2 / n
    return TestResult(chi2, float(stats.chi2.sf(chi2, 1)), 1, "McNemar chi-square, continuity corrected")


def cohens_dz(diffs: Sequence[float]) -> float | None:
    """Cohen's d_z for paired data: mean difference divided by the SD of the differences."""
    if not _has_spread(diffs):
        return None
    return statistics.fmean(diffs) / statistics.stdev(diffs)


def cohens_d_pooled(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cohen's d for two groups: (mean b - mean a) over the pooled SD (n-1 weighted)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    pooled = ((na - 1) * statistics.variance(a) + (nb - 1) * statistics.variance(b)) / (na + nb - 2)
    if pooled <= 0:
        return None
    return (statistics.fmean(b) - statistics.fmean(a)) / math.sqrt(pooled)


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cliff's delta: P(b > a) - P(b < a) over all pairs, in [-1, 1]."""
    if not a or not b:
        return None
    from bisect import bisect_left, bisect_right

    ordered = sorted(a)
    greater = sum(bisect_left(ordered, y) for y in b)
    less = sum(len(ordered) - bisect_right(ordered, y) for y in b)
    return (greater - less) / (len(a) * len(b))


def cliffs_label(delta: float) -> str:
    """Romano et al. (2006) thresholds: negligible < 0.147 ≤ small < 0.33 ≤ medium < 0.474 ≤ large."""
    size = abs(delta)
    if size < 0.147:
        return "negligible"
    if size < 0.33:
        return "small"
    if size < 0.474:
        return "medium"
    return "large"


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; the same seed gives the same interval.

    Resamples are drawn as ``numpy.random.default_rng(seed).integers(0, n, (n_resamples, n))``, as
    ``scipy.stats.bootstrap(..., method="percentile")`` draws them, so the two agree exactly.
    """
    if len(values) < 2:
        return None
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // len(data))
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        means[start:stop] = data[rng.integers(0, len(data), (stop - start, len(data)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; None entries are skipped."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
