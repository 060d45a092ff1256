"""Two small exact tools for counts out of n: the two-sided binomial test at p = 1/2 and Wilson's interval.

Written here (the standard library's ``math`` only) because the judges need nothing more, and a
pairwise verdict should not wait for scipy to import.
"""

from __future__ import annotations

import math

__all__ = ["sign_test", "wilson"]

Z95 = 1.959963984540054


def sign_test(k: int, n: int) -> float | None:
    """Two-sided exact binomial p-value of ``k`` successes in ``n`` when each is a fair coin; None for n = 0.

    The sum of the probabilities of every outcome at most as likely as ``k`` (the same definition as
    scipy's ``binomtest``); with p = 1/2 that is twice the smaller tail, capped at 1.
    """
    if n <= 0:
        return None
    low = min(k, n - k)
    tail = math.fsum(math.exp(_log_pmf(i, n)) for i in range(low + 1))
    return min(1.0, 2 * tail) if 2 * low != n else 1.0


def _log_pmf(i: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval for the share ``k / n`` (95% by default); None for n = 0."""
    if n <= 0:
        return None
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
