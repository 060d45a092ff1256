"""Breakdowns (``group_by: COLUMN``): every aggregate and comparison per category, as well as overall.

A category is one value of the column (as text; a row without the column is in ``(missing)``). Each
experiment's result is cut to the category's rows, its aggregators run again on them, and the comparison
plugins compare the cut results: so a comparison's multiple-testing family is, per category, that
category's variants x criteria (the same family as overall, within one category), and the breakdown says
so. A category with fewer than ``group_min_rows`` rows gets its aggregates but no comparison, and is
listed in ``too_few`` with its count: stated, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from elspeth import Failure, Record, Row
from elspeth_experiment.compile import CompiledSuite
from elspeth_experiment.epochs import epoch_summary
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.runner import aggregate

__all__ = ["MISSING", "breakdown", "category_of"]

MISSING = "(missing)"
Compare = Callable[[list[ExperimentResult]], Awaitable[dict[str, dict[str, Any]]]]


def category_of(data: Any, column: str) -> str:
    """The category of a row's data: the column's value as text, or ``(missing)`` when absent or empty."""
    value = data.get(column) if hasattr(data, "get") else None
    return MISSING if value is None or value == "" else str(value)


def _cut(result: ExperimentResult, column: str, category: str, rows: int) -> ExperimentResult:
    def mine(item: Record | Failure) -> bool:
        return category_of(item.inputs, column) == category

    records = [r for r in result.records if mine(r)]
    failures = [f for f in result.failures if mine(f)]
    return ExperimentResult(
        name=result.name,
        baseline=result.baseline,
        records=records,
        failures=failures,
        early_stop=result.early_stop,
        rows_not_run=max(0, rows - len(records) - len(failures)) if result.rows_not_run else 0,
        epochs=result.epochs,
        group=category,
    )


async def breakdown(
    suite: CompiledSuite,
    results: Sequence[ExperimentResult],
    rows: Sequence[Row],
    column: str,
    min_rows: int,
    compare: Compare,
) -> dict[str, Any]:
    """The ``groups`` section of the results: per category, each experiment's counts, aggregates and comparisons."""
    counts: dict[str, int] = {}
    for row in rows:
        category = category_of(row.data, column)
        counts[category] = counts.get(category, 0) + 1
    categories: dict[str, Any] = {}
    too_few: dict[str, int] = {}
    for category, n in counts.items():
        cut = [_cut(result, column, category, n) for result in results]
        for experiment, part in zip(suite.experiments, cut, strict=False):
            if experiment.plan.epochs > 1:
                part.aggregates["epochs"] = epoch_summary(experiment.plan, [r.metrics for r in part.records])
            await aggregate(experiment, part)
        entry: dict[str, Any] = {
            "rows": n,
            "experiments": {
                part.name: {
                    "rows": len(part.records) + len(part.failures),
                    "succeeded": len(part.records),
                    "failed": len(part.failures),
                    "aggregates": part.aggregates,
                }
                for part in cut
            },
        }
        if n < min_rows:
            too_few[category] = n
            entry["comparisons"] = None
            entry["note"] = f"{n} rows, fewer than group_min_rows = {min_rows}: not compared"
        else:
            entry["comparisons"] = await compare(cut)
        categories[category] = entry
    return {
        "column": column,
        "min_rows": min_rows,
        "family": "per category: each comparison's p-values are adjusted within the category, over its "
        "variants x criteria (as overall), not across categories",
        "categories": categories,
        "too_few": too_few,
    }
