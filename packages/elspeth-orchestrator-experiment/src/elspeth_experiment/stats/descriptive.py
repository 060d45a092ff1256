"""Descriptive statistics: percentiles, summaries and the t-based confidence interval of a mean."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["mean_ci", "percentile", "summarise"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks.

    This is Hyndman and Fan's type 7, the default of numpy and R.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].

    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """The two-sided t-based confidence interval of the mean: mean ± t(1-alpha/2, n-1)·s/√n.

    Returns None with fewer than two values (no spread to estimate).
    """
    n = len(values)
    if n < 2:
        return None
    # scipy.special's Student-t quantile is the same function scipy.stats.t.ppf calls, and a quarter
    # of the import time: score_stats runs in every experiment, comparisons only in suites.
    from scipy.special import stdtrit  # type: ignore[import-untyped, unused-ignore]

    mean = statistics.fmean(values)
    half = float(stdtrit(n - 1, (1 + confidence) / 2)) * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Count, total, mean, median, min and max (None for all but count and total when empty)."""
    if not values:
        return {"count": 0, "total": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "count": len(values),
        "total": math.fsum(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
