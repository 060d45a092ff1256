"""``score_recommendation``: a plain-language verdict on an experiment's scores, with its reason and caveats."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Record, inline
from elspeth_experiment.stats.descriptive import mean_ci

__all__ = ["ScoreRecommendation"]


def _rows_for_half_width(values: Sequence[float], half_width: float) -> int | None:
    """Rows needed for a 95% interval of about ``half_width`` (normal approximation: (1.96·s/h)²)."""
    if len(values) < 2 or half_width <= 0:
        return None
    return math.ceil((1.96 * statistics.stdev(values) / half_width) ** 2)


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
        """The verdict, the reason behind it, and what to keep in mind."""
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
        caveats: list[str] = []
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
        ci = mean_ci(pooled, opts.confidence)
        assert ci is not None  # min_samples >= 2
        out.update(mean=mean, ci=list(ci))
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
                need = _rows_for_half_width(pooled, abs(mean - t))
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
            c: (statistics.fmean(v), mean_ci(v, self.options.confidence)) for c, v in per.items() if len(v) >= 2
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
