"""Early stops: ``threshold`` (a metric crosses a line) and ``failure_rate`` (too many rows fail).

A stop ends the taking of new rows; rows already in flight finish and are kept, and the reason is
stored in the experiment's ``early_stop`` and the run metadata.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Failure, Record, inline

__all__ = ["FailureRate", "Threshold", "lookup"]

Comparison = Literal["gte", "gt", "lte", "lt"]
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


def lookup(metrics: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in nested mappings (``scores.accuracy``), or None where it is absent."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class Threshold:
    """Stops an experiment once a record metric (its latest value or its running mean) crosses a threshold."""

    name = "threshold"

    class Options(BaseModel):
        """Options of ``threshold``."""

        model_config = ConfigDict(extra="forbid")

        metric: str = Field(description="dotted path into each record's metrics, e.g. `scores.accuracy` or `cost`")
        threshold: float = Field(description="the value to compare with")
        comparison: Comparison = Field("lt", description="stop when the statistic is gte/gt/lte/lt the threshold")
        statistic: Literal["mean", "latest", "sum"] = Field(
            "mean", description="compare the running mean, the latest row's value, or the running sum"
        )
        min_rows: int = Field(1, ge=1, description="rows with the metric present before the stop may fire")
        label: str | None = Field(None, description="a name for the stop in reports")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._count = 0
        self._total = 0.0

    @inline
    def check(self, record: Record) -> dict[str, Any] | None:
        """A reason once ``min_rows`` rows carry the metric and the statistic compares true."""
        value = lookup(record.metrics, self.options.metric)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        self._count += 1
        self._total += float(value)
        opts = self.options
        stat = {"mean": self._total / self._count, "latest": float(value), "sum": self._total}[opts.statistic]
        if self._count < opts.min_rows or not COMPARE[opts.comparison](stat, opts.threshold):
            return None
        return {
            "reason": f"{opts.statistic} of {opts.metric} is {stat:g}, {opts.comparison} {opts.threshold:g}",
            "metric": opts.metric,
            "statistic": opts.statistic,
            "value": stat,
            "comparison": opts.comparison,
            "threshold": opts.threshold,
            "rows_observed": self._count,
            "label": opts.label,
        }


class FailureRate:
    """Stops an experiment once the share of failed rows exceeds ``max_rate`` (after ``min_rows`` rows)."""

    name = "failure_rate"

    class Options(BaseModel):
        """Options of ``failure_rate``."""

        model_config = ConfigDict(extra="forbid")

        max_rate: float = Field(ge=0, le=1, description="stop when failed rows / finished rows exceeds this")
        min_rows: int = Field(10, ge=1, description="finished rows (ok or failed) before the stop may fire")
        stages: list[str] | None = Field(
            None, description="count only failures whose stage starts with one of these (e.g. `llm`, `validation`)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options
        self._ok = 0
        self._failed = 0

    def _reason(self) -> dict[str, Any] | None:
        finished = self._ok + self._failed
        rate = self._failed / finished if finished else 0.0
        if finished < self.options.min_rows or rate <= self.options.max_rate:
            return None
        return {
            "reason": f"{self._failed} of {finished} rows failed ({rate:.0%}), above {self.options.max_rate:.0%}",
            "failure_rate": rate,
            "failed": self._failed,
            "finished": finished,
            "max_rate": self.options.max_rate,
        }

    @inline
    def check(self, record: Record) -> dict[str, Any] | None:
        """Count a finished row."""
        self._ok += 1
        return self._reason()

    @inline
    def check_failure(self, failure: Failure) -> dict[str, Any] | None:
        """Count a failed row (a failure at an ignored stage counts as finished, not failed)."""
        stages = self.options.stages
        if stages is None or any(failure.stage.startswith(s) for s in stages):
            self._failed += 1
        else:
            self._ok += 1
        return self._reason()
