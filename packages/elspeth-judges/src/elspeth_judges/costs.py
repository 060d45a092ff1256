"""``judge_cost``: what an experiment's row judges cost, per judge, apart from the experiment's own calls.

Every row judge (``rubric_judge``) writes its calls, tokens, latency and cost under ``judge_<label>``
in the record's metrics, and the experiment's own ``cost`` metric leaves them out, so
``cost_summary`` reports what the experiment's calls cost and this aggregator what judging them
cost. A pairwise judge reports its cost in its comparison (``judge``), as it judges after the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from elspeth import Record
from elspeth_judges._calls import add_usage

__all__ = ["JudgeCost"]


class JudgeCost:
    """Totals of every row judge's calls, tokens, latency and cost, per judge and together."""

    name = "judge_cost"

    class Options(BaseModel):
        """``judge_cost`` has no options."""

        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        """``judges`` (by label) and ``total``: calls, cached, tokens, latency and cost (None when unpriced)."""
        judges: dict[str, dict[str, Any]] = {}
        for record in records:
            for key, value in record.metrics.items():
                if key.startswith("judge_") and isinstance(value, dict) and "calls" in value:
                    add_usage(judges.setdefault(key.removeprefix("judge_"), {}), value)
        total: dict[str, Any] = {}
        for spent in judges.values():
            add_usage(total, spent)
        return {"judges": judges, "total": total or None}
