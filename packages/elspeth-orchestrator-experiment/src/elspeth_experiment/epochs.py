"""Repeated samples (``epochs: K``): each row asked K times, the epochs reduced to one score per row.

An LLM's answer to the same prompt varies; one sample per row mixes that noise into the comparison of
experiments. With ``epochs: K`` every row is asked K times (each epoch with its own seed, when the
client takes one, and its own temperature where ``epoch_temperatures`` sets one), the row plugins score
each epoch, and a reducer turns a row's K scores into the one score the aggregators and comparisons
read. The epochs' own scores stay in the record (``epoch_scores``, ``epoch_flags``), so the comparison
can cluster its standard errors by row and the ``epochs`` summary can split the variance into the part
within a row (sampling noise) and the part between rows.

Reducers of scores: ``mean``, ``median``, ``mode``, ``max``, ``min``. Reducers of pass flags (a
threshold on the score extractor): ``at_least_k`` (the row passes when at least ``k`` epochs pass),
``pass_at_k`` (the unbiased estimator of the chance that at least one of ``k`` samples passes,
1 - C(n-c, k) / C(n, k), Chen et al. 2021) and ``pass_hat_k`` (pass^k: the chance that all ``k`` pass,
C(c, k) / C(n, k)), with n epochs flagged and c of them passing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["REDUCERS", "EpochPlan", "Reducer", "epoch_summary", "pass_at_k", "pass_hat_k", "reduce_epochs"]

Reducer = Literal["mean", "median", "mode", "max", "min", "at_least_k", "pass_at_k", "pass_hat_k"]
REDUCERS: tuple[str, ...] = ("mean", "median", "mode", "max", "min", "at_least_k", "pass_at_k", "pass_hat_k")
FLAG_REDUCERS = ("at_least_k", "pass_at_k", "pass_hat_k")


@dataclass(frozen=True)
class EpochPlan:
    """How an experiment repeats its rows: ``epochs`` samples, reduced by ``reducer`` (``k`` for the pass ones).

    ``seeds[e]`` and ``temperatures[e]`` are the params of epoch ``e + 1`` (None: the client's own).
    """

    epochs: int = 1
    reducer: str = "mean"
    k: int = 1
    seeds: tuple[int | None, ...] = (None,)
    temperatures: tuple[float | None, ...] = (None,)

    def params(self, epoch: int) -> dict[str, Any]:
        """The request params of ``epoch`` (1-based): its seed and temperature where set."""
        out: dict[str, Any] = {}
        seed, temperature = self.seeds[epoch - 1], self.temperatures[epoch - 1]
        if seed is not None:
            out["seed"] = seed
        if temperature is not None:
            out["temperature"] = temperature
        return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from ``n`` samples of which ``c`` passed: 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The unbiased pass^k estimate (all of ``k`` samples pass) from ``n`` samples, ``c`` passed: C(c, k) / C(n, k)."""
    return math.comb(c, k) / math.comb(n, k)


def _mode(values: Sequence[float]) -> float:
    """The most frequent value; among equally frequent ones, the smallest (so the result does not depend on order)."""
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)


_SCORE: dict[str, Callable[[Sequence[float]], float]] = {
    "mean": statistics.fmean,
    "median": statistics.median,
    "mode": _mode,
    "max": max,
    "min": min,
}


def _reduce_scores(reducer: str, scores: Sequence[float | None]) -> float | None:
    have = [s for s in scores if s is not None]
    return float(_SCORE[reducer](have)) if have else None


def _reduce_flags(reducer: str, flags: Sequence[bool | None], k: int) -> tuple[float | None, bool | None]:
    """The row's score and flag from its epochs' flags (an epoch without a flag is left out of n)."""
    have = [f for f in flags if f is not None]
    n, c = len(have), sum(have)
    if reducer == "at_least_k":
        passed = c >= k if have else None
        return (None if passed is None else float(passed)), passed
    if n < k:  # fewer flagged epochs than k: the estimator is undefined
        return None, None
    estimate = pass_at_k(n, c, k) if reducer == "pass_at_k" else pass_hat_k(n, c, k)
    return estimate, None


def reduce_epochs(plan: EpochPlan, epochs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One row's metrics from its epochs' row-plugin metrics: reduced ``scores`` (and ``score_flags``).

    The epochs' own values are kept as ``epoch_scores`` and ``epoch_flags`` (one list entry per epoch).
    A score reducer flags the row by the majority of its epochs' flags (``max``: any, ``min``: all); a
    pass@k or pass^k score is a probability, not a pass, so the row gets no flag from it.
    """
    scores: dict[str, list[Any]] = {}
    flags: dict[str, list[Any]] = {}
    for e, metrics in enumerate(epochs):
        for criterion, value in (metrics.get("scores") or {}).items():
            scores.setdefault(criterion, [None] * len(epochs))[e] = value
        for criterion, value in (metrics.get("score_flags") or {}).items():
            flags.setdefault(criterion, [None] * len(epochs))[e] = value
    out: dict[str, Any] = {"epoch_scores": scores}
    reduced: dict[str, float | None] = {}
    reduced_flags: dict[str, bool] = {}
    if plan.reducer in FLAG_REDUCERS:
        for criterion, values in flags.items():
            score, flag = _reduce_flags(plan.reducer, values, plan.k)
            reduced[criterion] = score
            if flag is not None:
                reduced_flags[criterion] = flag
    else:
        reduced = {c: _reduce_scores(plan.reducer, values) for c, values in scores.items()}
        for criterion, values in flags.items():
            have = [f for f in values if f is not None]
            if have:
                wins = sum(have)
                rule = {"max": wins >= 1, "min": wins == len(have)}
                reduced_flags[criterion] = rule.get(plan.reducer, 2 * wins > len(have))
    out["scores"] = reduced
    if flags:
        out["epoch_flags"] = flags
    if reduced_flags:
        out["score_flags"] = reduced_flags
    return out


def _variance(values: Sequence[float]) -> float | None:
    return statistics.variance(values) if len(values) > 1 else None


def epoch_summary(plan: EpochPlan, metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``epochs`` aggregate: per criterion, the variance within rows and between rows.

    ``within_row_variance`` is the mean over rows of each row's sample variance over its epochs (the
    LLM's sampling noise); ``variance_of_row_means`` is the sample variance of the rows' epoch means;
    ``between_row_variance`` is the one-way ANOVA estimate of the rows' own spread, the variance of the
    row means less the part the noise puts into them (within / K, for K epochs a row), floored at 0;
    ``icc`` = between / (between + within), the share of the variance that is the rows'.
    """
    columns: dict[str, list[list[float]]] = {}
    for m in metrics:
        for criterion, values in (m.get("epoch_scores") or {}).items():
            columns.setdefault(criterion, []).append([float(v) for v in values if v is not None])
    criteria: dict[str, Any] = {}
    for criterion, rows in columns.items():
        full = [r for r in rows if r]
        within = [v for v in map(_variance, full) if v is not None]
        means = [statistics.fmean(r) for r in full]
        w = statistics.fmean(within) if within else None
        of_means = _variance(means)
        sizes = [len(r) for r in full]
        between = None
        if w is not None and of_means is not None:
            harmonic = len(sizes) / sum(1 / s for s in sizes)  # unequal epochs per row (some unscored)
            between = max(0.0, of_means - w / harmonic)
        icc = between / (between + w) if between is not None and w is not None and between + w > 0 else None
        criteria[criterion] = {
            "rows": len(full),
            "samples": sum(sizes),
            "within_row_variance": w,
            "variance_of_row_means": of_means,
            "between_row_variance": between,
            "icc": icc,
        }
    return {"epochs": plan.epochs, "reducer": plan.reducer, "k": plan.k, "criteria": criteria}
