"""Intervals of pass rates: Wilson and Clopper-Pearson, and a paired comparison whose test and interval agree.

A t interval for a pass rate is wrong at the edges: 30 passes of 30 give [1, 1] and 29 of 30 give
[0.898, 1.03], an interval past 100%. Wilson's score interval stays inside [0, 1] and covers close to
its level at small n; Clopper-Pearson inverts the exact binomial test and never covers less than it says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from elspeth_experiment.stats.descriptive import mean_ci

__all__ = ["PairedPassRates", "clopper_pearson", "mean_interval", "paired_pass_rates", "wilson"]


def wilson(passes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson's score interval of a proportion (None when ``n`` is 0)."""
    if n <= 0:
        return None
    from scipy.special import ndtri  # type: ignore[import-untyped, unused-ignore]

    z = float(ndtri((1 + confidence) / 2))
    p = passes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if passes == 0 else max(0.0, centre - half)  # exactly 0 and 1 at the edges, not 1 - 1e-16
    return low, 1.0 if passes == n else min(1.0, centre + half)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The exact (Clopper-Pearson) interval of a proportion: the values the central binomial test keeps."""
    if n <= 0:
        return None
    from scipy.special import betaincinv  # type: ignore[import-untyped, unused-ignore]

    alpha = 1 - confidence
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


@dataclass(frozen=True)
class PairedPassRates:
    """The change in pass rate over paired rows, tested and bounded by one exact conditional method."""

    n: int
    pass_to_fail: int
    fail_to_pass: int
    difference: float
    p_value: float
    ci: tuple[float, float]
    method: str


def paired_pass_rates(pass_to_fail: int, fail_to_pass: int, n: int, confidence: float = 0.95) -> PairedPassRates:
    """Exact conditional McNemar test and its interval of the pass-rate difference (variant minus baseline).

    Given the ``d = b + c`` discordant pairs, the count ``c`` that went fail to pass is binomial with
    share ``pi``, and the difference in pass rates is ``(c - b) / n = d (2 pi - 1) / n``. The test is the
    central exact binomial test of ``pi = 1/2`` (p = 2 min(P(X <= c), P(X >= c))), and the interval is the
    Clopper-Pearson interval of ``pi`` mapped to the difference: the interval is the set of values the
    same test keeps, so it excludes 0 exactly when ``p < 1 - confidence``.
    """
    b, c = pass_to_fail, fail_to_pass
    d = b + c
    method = "exact conditional McNemar (central binomial on the discordant pairs), Clopper-Pearson interval"
    if d == 0:
        return PairedPassRates(n, b, c, 0.0, 1.0, (0.0, 0.0), method)
    from scipy.stats import binom  # type: ignore[import-untyped, unused-ignore]

    p = min(1.0, 2 * min(float(binom.cdf(c, d, 0.5)), float(binom.sf(c - 1, d, 0.5))))
    interval = clopper_pearson(c, d, confidence)
    assert interval is not None  # d > 0
    low, high = (d * (2 * end - 1) / n for end in interval)
    return PairedPassRates(n, b, c, (c - b) / n, p, (low, high), method)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[tuple[float, float] | None, str]:
    """The interval of a mean and its method: Wilson when every value is 0 or 1 (a pass rate), else t."""
    if values and all(v in (0, 1) for v in values):
        return wilson(int(sum(values)), len(values), confidence), "Wilson score interval (the scores are 0 or 1)"
    return mean_ci(values, confidence), "t interval of the mean"
