"""The studentized (bootstrap-t) bootstrap of a mean or a difference of means: one test, one interval.

The percentile bootstrap covers a 95% interval only about 81% of the time at n = 10; the studentized
bootstrap resamples the t statistic itself, which corrects for skew, and covers about 94% on
exponential data at n = 10 (the simulation in tests/test_intervals.py).

Its p-value and its interval are read off the same sorted bootstrap distribution T* of
``(estimate* - estimate) / se*``: with ``k = ceil(alpha B / 2)``, the level ``1 - alpha`` interval is
``[est - se T*(B-k+1), est - se T*(k)]`` and the two-sided p-value of a hypothesised value ``delta`` is
``2 min(#{T* >= t}, #{T* <= t}) / B`` with ``t = (est - delta) / se``. So ``p >= alpha`` exactly when the
interval contains ``delta``: the test and the interval cannot contradict each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BootT", "studentized_one_sample", "studentized_two_sample"]

_CHUNK_CELLS = 2_000_000
"""Resampled values drawn at once, to bound memory (16 MB of indices)."""


@dataclass(frozen=True)
class BootT:
    """A studentized bootstrap distribution: the estimate, its standard error, and the sorted T*."""

    estimate: float
    se: float
    t_star: Any  # numpy array, sorted ascending
    resamples: int

    def p_value(self, delta: float = 0.0, alternative: Literal["two-sided", "greater", "less"] = "two-sided") -> float:
        """The p-value of ``H0: true value = delta`` (``greater``: H1 true value > delta)."""
        import numpy as np  # type: ignore[import-untyped, unused-ignore]

        t = (self.estimate - delta) / self.se
        b = self.resamples
        upper = (b - int(np.searchsorted(self.t_star, t, side="left"))) / b  # share of T* >= t
        lower = int(np.searchsorted(self.t_star, t, side="right")) / b  # share of T* <= t
        if alternative == "greater":
            return upper
        if alternative == "less":
            return lower
        return min(1.0, 2 * min(upper, lower))

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-sided interval at ``confidence``: it holds ``delta`` iff ``p_value(delta) >= 1 - confidence``."""
        b = self.resamples
        k = max(1, math.ceil((1 - confidence) * b / 2 - 1e-9))
        t_low, t_high = float(self.t_star[k - 1]), float(self.t_star[b - k])
        return self.estimate - self.se * t_high, self.estimate - self.se * t_low


def _t_values(means: Any, ses: Any, estimate: float) -> Any:
    """``(means - estimate) / ses``, with a resample that has no spread counted as +-inf (or 0 on the estimate)."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    centred = means - estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        t = centred / ses
    flat = ses == 0
    t[flat] = np.sign(centred[flat]) * np.inf
    return t


def _chunks(n_resamples: int, n: int) -> list[tuple[int, int]]:
    step = max(1, _CHUNK_CELLS // max(1, n))
    return [(s, min(s + step, n_resamples)) for s in range(0, n_resamples, step)]


def _resampled_mean_var(data: Any, rng: Any, count: int) -> tuple[Any, Any]:
    sample = data[rng.integers(0, len(data), (count, len(data)))]
    return sample.mean(axis=1), sample.var(axis=1, ddof=1)


def studentized_one_sample(values: Sequence[float], n_resamples: int = 10_000, seed: int = 0) -> BootT | None:
    """Bootstrap-t of the mean (of paired differences); None with fewer than 2 values or no spread."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    data = np.asarray(values, dtype=float)
    n = len(data)
    if n < 2 or data.max() == data.min():
        return None
    estimate, se = float(data.mean()), float(data.std(ddof=1) / math.sqrt(n))
    rng = np.random.default_rng(seed)
    t_star = np.empty(n_resamples)
    for start, stop in _chunks(n_resamples, n):
        means, variances = _resampled_mean_var(data, rng, stop - start)
        t_star[start:stop] = _t_values(means, np.sqrt(variances / n), estimate)
    t_star.sort()
    return BootT(estimate, se, t_star, n_resamples)


def studentized_two_sample(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10_000, seed: int = 0
) -> BootT | None:
    """Bootstrap-t of ``mean(b) - mean(a)`` with Welch's standard error, each group resampled on its own."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(xa) < 2 or len(xb) < 2:
        return None
    se = math.sqrt(xa.var(ddof=1) / len(xa) + xb.var(ddof=1) / len(xb))
    if se == 0:
        return None
    estimate = float(xb.mean() - xa.mean())
    rng = np.random.default_rng(seed)
    t_star = np.empty(n_resamples)
    for start, stop in _chunks(n_resamples, len(xa) + len(xb)):
        mean_a, var_a = _resampled_mean_var(xa, rng, stop - start)
        mean_b, var_b = _resampled_mean_var(xb, rng, stop - start)
        t_star[start:stop] = _t_values(mean_b - mean_a, np.sqrt(var_a / len(xa) + var_b / len(xb)), estimate)
    t_star.sort()
    return BootT(estimate, se, t_star, n_resamples)
