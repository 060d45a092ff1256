"""``score_recommendation``: a plain-language verdict on an experiment's scores, with its reason and caveats.

Inside the orchestrator it sees the whole experiment (``finalize_result``): rows that failed are not
scored, and an experiment stopped early saw only some rows, so both become caveats of the verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Record, inline
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats.intervals import mean_interval

__all__ = ["ScoreRecommendation", "rows_for_half_width"]

_MAX_ROWS = 10_000_000


def rows_for_half_width(values: Sequence[float], half_width: float, confidence: float = 0.95) -> int | None:
    """Fewest scores n whose ``confidence`` t interval, t(n-1)·s/√n, is at most ``half_width`` wide each side.

    ``s`` is the standard deviation of ``values``, assumed to hold. Starts from the normal
    approximation (z·s/h)², which never overshoots since t > z, and steps up. None without spread
    or beyond ten million.
    """
    if len(values) < 2 or half_width <= 0:
        return None
    from statistics import NormalDist

    from scipy.special import stdtrit  # type: ignore[import-untyped, unused-ignore]

    sd = statistics.stdev(values)
    if sd == 0:
        return 2
    q = (1 + confidence) / 2
    n = max(2, math.ceil((NormalDist().inv_cdf(q) * sd / half_width) ** 2))
    while float(stdtrit(n - 1, q)) * sd / math.sqrt(n) > half_width:
        n += 1
        if n > _MAX_ROWS:
            return None
    return n


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class ScoreRecommendation:
    """A verdict in words (meets target, falls short, inconclusive, collect more data) with reason and caveats."""

    name = "score_recommendation"

    class Options(BaseModel):
        """Options of ``score_recommendation``."""

        model_config = ConfigDict(extra="forbid")

        source_field: str = Field("scores", description="the record metric holding scores per criterion")
        target: float | None = Field(None, description="the mean score the experiment should reach, if there is one")
        min_samples: int = Field(30, ge=2, description="fewer scored rows than this: recommend collecting more")
        confidence: float = Field(0.95, gt=0, lt=1, description="level of the intervals the verdict rests on")
        max_missing_share: float = Field(
            0.1, ge=0, le=1, description="warn when more than this share of scores is missing"
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        """The verdict, the reason behind it, and what to keep in mind (records alone)."""
        return self._verdict(records, [])

    @inline
    def finalize_result(self, result: ExperimentResult) -> dict[str, Any]:
        """The verdict over the records, with caveats for rows that failed and for an early stop."""
        caveats = []
        if result.failures:
            caveats.append(
                f"{_plural(len(result.failures), 'row failed and is', 'rows failed and are')} excluded; "
                "the verdict rests on the rows that succeeded, which may not be typical"
            )
        if result.early_stop:
            why = result.early_stop.get("reason") or f"by {result.early_stop.get('plugin', 'an early-stop plugin')}"
            not_run = f"; {_plural(result.rows_not_run, 'row was', 'rows were')} not run" if result.rows_not_run else ""
            caveats.append(f"stopped early: {why}{not_run}")
        out = self._verdict(result.records, caveats)
        out["failed"] = len(result.failures)
        out["early_stop"] = result.early_stop.get("reason") if result.early_stop else None
        return out

    def _verdict(self, records: Sequence[Record], caveats: list[str]) -> dict[str, Any]:
        opts = self.options
        per: dict[str, list[float]] = {}
        missing = 0
        for record in records:
            for criterion, value in (record.metrics.get(opts.source_field) or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    per.setdefault(criterion, []).append(float(value))
                else:
                    per.setdefault(criterion, [])
                    missing += 1
        pooled = [v for vs in per.values() for v in vs]
        if pooled and missing / (len(pooled) + missing) > opts.max_missing_share:
            caveats.append(f"{missing} of {len(pooled) + missing} scores are missing; the rest may not be typical")
        out: dict[str, Any] = {"n": len(pooled), "missing": missing, "caveats": caveats}
        if len(pooled) < opts.min_samples:
            out.update(
                recommendation="Collect more data before deciding.",
                reason=f"only {len(pooled)} scores, fewer than the {opts.min_samples} this recommendation needs",
            )
            return out
        mean = statistics.fmean(pooled)
        ci, method = mean_interval(pooled, opts.confidence)
        assert ci is not None  # min_samples >= 2
        out.update(mean=mean, ci=list(ci), ci_method=method)
        level = f"{opts.confidence:.0%}"
        if len(per) > 1:
            caveats.append("criteria are pooled; the interval treats their scores as independent")
        if opts.target is not None:
            t = opts.target
            if ci[0] >= t:
                out.update(recommendation="Meets the target.", reason=f"the {level} interval {_fmt(ci)} is above {t:g}")
            elif ci[1] < t:
                out.update(
                    recommendation="Falls short of the target.",
                    reason=f"the {level} interval {_fmt(ci)} is below {t:g}",
                )
            else:
                need = rows_for_half_width(pooled, abs(mean - t), opts.confidence)
                more = f"; roughly {need} scores would settle it if the mean holds" if need else ""
                out.update(
                    recommendation="Inconclusive: keep testing before deciding.",
                    reason=f"the {level} interval {_fmt(ci)} contains the target {t:g}{more}",
                )
            return out
        out.update(self._criteria_verdict(per, level))
        return out

    def _criteria_verdict(self, per: dict[str, list[float]], level: str) -> dict[str, Any]:
        intervals = {
            c: (statistics.fmean(v), mean_interval(v, self.options.confidence)[0])
            for c, v in per.items()
            if len(v) >= 2
        }
        if len(intervals) < 2:
            return {
                "recommendation": "No comparison to make: set a target to judge this experiment.",
                "reason": "one criterion and no target",
            }
        best = max(intervals, key=lambda c: intervals[c][0])
        worst = min(intervals, key=lambda c: intervals[c][0])
        best_ci, worst_ci = intervals[best][1], intervals[worst][1]
        assert best_ci is not None
        assert worst_ci is not None
        verdict = {"best_criterion": best, "weakest_criterion": worst}
        if worst_ci[1] < best_ci[0]:
            verdict.update(
                recommendation=f"Improve '{worst}' first.",
                reason=f"its {level} interval {_fmt(worst_ci)} lies below that of '{best}' {_fmt(best_ci)}",
            )
        else:
            verdict.update(
                recommendation="No criterion stands out.",
                reason=f"the {level} intervals of the strongest ('{best}') and weakest ('{worst}') criteria overlap",
            )
        return verdict


def _fmt(interval: Sequence[float]) -> str:
    return f"[{interval[0]:.3g}, {interval[1]:.3g}]"
