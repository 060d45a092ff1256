"""Power of two-sided t-tests from the noncentral t distribution, and the sample size a target power needs."""

from __future__ import annotations

import functools
import math
from typing import Literal

__all__ = ["required_n", "t_test_power"]

Design = Literal["paired", "two_sample"]
MAX_N = 10_000_000


def t_test_power(effect: float, n: int, alpha: float = 0.05, design: Design = "paired") -> float:
    """Power of the two-sided t-test at standardised effect ``effect``.

    ``paired``: one-sample t on the differences, n pairs, effect d_z; df = n - 1, noncentrality d·√n.
    ``two_sample``: n per group, effect d; df = 2n - 2, noncentrality d·√(n/2).
    """
    from scipy import special  # type: ignore[import-untyped, unused-ignore]

    if design == "paired":
        df, nc = n - 1, effect * math.sqrt(n)
    else:
        df, nc = 2 * n - 2, effect * math.sqrt(n / 2)
    if df < 1:
        return float("nan")
    crit = float(special.stdtrit(df, 1 - alpha / 2))
    # P(T > crit) + P(T < -crit) for T noncentral t(df, nc); nctdtr is its CDF
    return float(1 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit))


@functools.lru_cache(maxsize=256)  # a comparison asks the same question for every variant and criterion
def required_n(effect: float, power: float = 0.8, alpha: float = 0.05, design: Design = "paired") -> int | None:
    """Smallest n (pairs, or per group) whose power reaches ``power``; None for a zero effect or beyond 10⁷.

    Starts from the normal approximation ((z(1-alpha/2) + z(power)) / d)² (times 2 per group for two
    samples) and then searches the exact noncentral-t power.
    """
    from statistics import NormalDist

    if not math.isfinite(effect) or effect == 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    guess = (z / abs(effect)) ** 2 * (2 if design == "two_sample" else 1)
    if guess > MAX_N:
        return None
    low = max(2, math.floor(guess) - 2)
    while low > 2 and t_test_power(effect, low, alpha, design) >= power:
        low = max(2, low - 8)
    high = low
    while t_test_power(effect, high, alpha, design) < power:
        high += 1
        if high > MAX_N:
            return None
    return high
