"""Aggregators over the per-row metrics the runner writes: ``cost_summary`` and ``latency_summary``.

``cost_summary`` counts failed rows too: their calls were made and paid for (a response a validator
rejected, a judge's verdict), and the runner keeps their figures in ``Failure.metrics``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Failure, Record, inline
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats.descriptive import percentile, summarise

__all__ = ["CostSummary", "LatencySummary"]


def _numbers(records: Sequence[Record | Failure], key: str) -> list[float]:
    values = (r.metrics.get(key) for r in records)
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


class CostSummary:
    """Totals and per-row mean, median, min and max of prompt, completion and total tokens, and of cost.

    Inside the orchestrator the figures cover every row that made calls, failed ones included;
    ``failed_rows`` and ``failed_cost`` say how much of it went on rows that produced no record.
    """

    name = "cost_summary"

    class Options(BaseModel):
        """Options of ``cost_summary``."""

        model_config = ConfigDict(extra="forbid")

        cost_field: str = Field("cost", description="the record metric holding the row's cost")

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        """Summarise the records alone; ``cost`` is None when no row carried a cost (no cost tracker)."""
        return self._summarise(records, ())

    @inline
    def finalize_result(self, result: ExperimentResult) -> dict[str, Any]:
        """Summarise the records and the failed rows together: a failed row's calls were paid for too."""
        return self._summarise(result.records, result.failures)

    def _summarise(self, records: Sequence[Record], failures: Sequence[Failure]) -> dict[str, Any]:
        rows: list[Record | Failure] = [*records, *failures]
        prompt = _numbers(rows, "prompt_tokens")
        completion = _numbers(rows, "completion_tokens")
        total = [
            float(r.metrics.get("prompt_tokens", 0)) + float(r.metrics.get("completion_tokens", 0))
            for r in rows
            if "prompt_tokens" in r.metrics or "completion_tokens" in r.metrics
        ]
        cost = _numbers(rows, self.options.cost_field)
        failed_cost = _numbers(failures, self.options.cost_field)
        return {
            "rows": len(records),
            "failed_rows": len(failures),
            "prompt_tokens": summarise(prompt),
            "completion_tokens": summarise(completion),
            "total_tokens": summarise(total),
            "cost": summarise(cost) if cost else None,
            "rows_with_cost": len(cost),
            "failed_cost": math.fsum(failed_cost) if failed_cost else None,
        }


class LatencySummary:
    """Per-row latency: count, mean, median, p50, p95, p99, min and max, in seconds."""

    name = "latency_summary"

    class Options(BaseModel):
        """Options of ``latency_summary``."""

        model_config = ConfigDict(extra="forbid")

        field: str = Field("latency_s", description="the record metric holding the row's latency in seconds")
        percentiles: list[Annotated[float, Field(ge=0, le=100)]] = Field(
            default_factory=lambda: [50.0, 95.0, 99.0],
            description="percentiles to report (linear interpolation, as numpy's default)",
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        """Summarise; every figure but ``count`` is None when no row carried a latency."""
        values = _numbers(records, self.options.field)
        out: dict[str, Any] = {"count": len(values)}
        if not values:
            out.update(mean=None, median=None, min=None, max=None)
            out.update({f"p{q:g}": None for q in self.options.percentiles})
            return out
        out.update(mean=statistics.fmean(values), median=statistics.median(values), min=min(values), max=max(values))
        out.update({f"p{q:g}": percentile(values, q) for q in self.options.percentiles})
        return out
