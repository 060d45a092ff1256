"""One method per comparison: the test, its interval and its equivalence p-values come from the same place.

Each estimator returns the comparison's figures and ``p_at(delta, alternative)``, the p-value of the
same method for a hypothesised difference ``delta``: the equivalence (TOST) and "no worse than" tests
call it at the margin, so they cannot disagree with the interval either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.bootstrap import BootT, studentized_one_sample, studentized_two_sample

__all__ = ["Alternative", "PAt", "Method", "paired_estimate", "unpaired_estimate"]

Alternative = Literal["greater", "less"]
Method = Literal["t", "bootstrap", "rank"]
PAt = Callable[[float, Alternative], float]


def _constant_p_at(value: float) -> PAt:
    """``p_at`` of a difference known exactly: H0 is either certainly false (p = 0) or not rejected (p = 1)."""

    def p_at(delta: float, alternative: Alternative) -> float:
        beyond = value > delta if alternative == "greater" else value < delta
        return 0.0 if beyond else 1.0

    return p_at


def _t_p_at(estimate: float, se: float, df: float) -> PAt:
    from scipy.special import stdtr  # type: ignore[import-untyped, unused-ignore]

    def p_at(delta: float, alternative: Alternative) -> float:
        t = (estimate - delta) / se
        return float(stdtr(df, -t) if alternative == "greater" else stdtr(df, t))

    return p_at


def _t_figures(estimate: float, se: float, df: float, result: fq.TestResult, confidence: float) -> dict[str, Any]:
    from scipy.special import stdtrit  # type: ignore[import-untyped, unused-ignore]

    half = float(stdtrit(df, (1 + confidence) / 2)) * se
    return {"test": result.method, "p_value": result.p_value, "ci": [estimate - half, estimate + half]}


def _boot_figures(boot: BootT, confidence: float, label: str) -> dict[str, Any]:
    return {"test": label, "p_value": boot.p_value(0.0), "ci": list(boot.interval(confidence))}


def _boot_p_at(boot: BootT) -> PAt:
    return lambda delta, alternative: boot.p_value(delta, alternative)


def _constant(value: float, result: fq.TestResult) -> tuple[dict[str, Any], PAt]:
    return {"test": result.method, "p_value": result.p_value, "ci": [value, value]}, _constant_p_at(value)


def paired_estimate(
    diffs: Any, method: Method, confidence: float, resamples: int, seed: int
) -> tuple[dict[str, Any], PAt | None]:
    """The primary test and interval of the mean paired difference (``diffs`` is a numpy array, n >= 2)."""
    n = len(diffs)
    t = fq.paired_t(diffs)
    assert t is not None  # n >= 2
    if t.statistic is None or diffs.max() == diffs.min():
        return _constant(float(diffs[0]), t)
    estimate, se = float(diffs.mean()), float(diffs.std(ddof=1)) / math.sqrt(n)
    if method == "rank":
        return _rank_paired(diffs)
    if method == "bootstrap":
        boot = studentized_one_sample(diffs, resamples, seed)
        assert boot is not None  # n >= 2 with spread
        label = f"studentized bootstrap of the mean paired difference, {resamples} resamples, seed {seed}"
        return _boot_figures(boot, confidence, label), _boot_p_at(boot)
    return _t_figures(estimate, se, n - 1, t, confidence), _t_p_at(estimate, se, n - 1)


def _rank_paired(diffs: Any) -> tuple[dict[str, Any], PAt]:
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    w = fq.wilcoxon(diffs)
    assert w is not None

    def p_at(delta: float, alternative: Alternative) -> float:
        shifted = diffs - delta
        if not shifted.any():
            return 1.0
        return float(stats.wilcoxon(shifted, zero_method="wilcox", alternative=alternative).pvalue)

    return {"test": w.method, "p_value": w.p_value, "ci": None}, p_at


def unpaired_estimate(
    base: Any, var: Any, method: Method, confidence: float, resamples: int, seed: int
) -> tuple[dict[str, Any], PAt | None]:
    """The primary test and interval of ``mean(var) - mean(base)`` (numpy arrays, 2 or more values each)."""
    welch = fq.welch_t(base, var)
    assert welch is not None
    estimate = float(var.mean() - base.mean())
    if welch.statistic is None or (welch.p_value == 1.0 and welch.method.endswith("no difference in any row")):
        return _constant(estimate, welch)
    se, df = fq.welch_df(base, var)
    if method == "rank":
        return _rank_unpaired(base, var)
    if method == "bootstrap":
        boot = studentized_two_sample(base, var, resamples, seed)
        assert boot is not None
        label = f"studentized bootstrap of the difference of means (Welch SE), {resamples} resamples, seed {seed}"
        return _boot_figures(boot, confidence, label), _boot_p_at(boot)
    return _t_figures(estimate, se, df, welch, confidence), _t_p_at(estimate, se, df)


def _rank_unpaired(base: Any, var: Any) -> tuple[dict[str, Any], PAt]:
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    u = fq.mann_whitney(base, var)
    assert u is not None

    def p_at(delta: float, alternative: Alternative) -> float:
        return float(stats.mannwhitneyu(var - delta, base, alternative=alternative).pvalue)

    return {"test": u.method, "p_value": u.p_value, "ci": None}, p_at


def interval_method(method: Method, paired: bool, test: str) -> str:
    """The sentence naming where a comparison's interval comes from."""
    if method == "rank":
        return "none: a rank test makes no statement about the mean, so no interval of it is given"
    if test.startswith("studentized"):
        return test
    if "certain effect" in test or "no difference in any row" in test:
        return "exact: every row's difference is the same"
    return "t interval of the mean paired difference" if paired else "Welch t interval of the difference of means"
