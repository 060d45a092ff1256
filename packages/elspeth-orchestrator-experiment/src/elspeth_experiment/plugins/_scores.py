"""Reading scores and pass flags per criterion and row out of an experiment's records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from elspeth_experiment.protocols import ExperimentResult

__all__ = ["criteria_of", "flag_table", "score_table"]


def score_table(result: ExperimentResult, field: str) -> dict[str, dict[str, float]]:
    """``{criterion: {row_id: score}}`` from each record's ``metrics[field]``; missing scores are left out."""
    table: dict[str, dict[str, float]] = {}
    for record in result.records:
        for criterion, value in (record.metrics.get(field) or {}).items():
            column = table.setdefault(criterion, {})
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                column[record.row_id] = float(value)
    return table


def flag_table(result: ExperimentResult, field: str) -> dict[str, dict[str, bool]]:
    """``{criterion: {row_id: passed}}`` from each record's ``metrics[field]``."""
    table: dict[str, dict[str, bool]] = {}
    for record in result.records:
        for criterion, flag in (record.metrics.get(field) or {}).items():
            table.setdefault(criterion, {})[record.row_id] = bool(flag)
    return table


def criteria_of(tables: Sequence[dict[str, Any]], only: Sequence[str] | None) -> list[str]:
    """The criteria to compare: ``only`` if given, else every criterion seen, in first-seen order."""
    if only is not None:
        return list(only)
    seen: dict[str, None] = {}
    for table in tables:
        seen.update(dict.fromkeys(table))
    return list(seen)
