"""The terminal lines of a ``group_by`` breakdown: each category's mean scores and its comparisons' verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["group_lines", "verdicts"]


def _mean(experiment: Mapping[str, Any]) -> str:
    stats = (experiment.get("aggregates") or {}).get("score_stats", {}).get("overall") or {}
    mean = stats.get("mean")
    return f"mean {mean:.3f}" if isinstance(mean, int | float) else f"{experiment.get('succeeded', 0)} ok"


def verdicts(comparisons: Mapping[str, Any]) -> list[str]:
    """``variant criterion: +0.123 (p_adj 0.01, significant)`` for each score_significance cell."""
    out = []
    for variant, plugins in comparisons.items():
        cells = (plugins.get("score_significance") or {}).get("criteria") or {}
        for criterion, cell in cells.items():
            diff, p = cell.get("mean_difference"), cell.get("p_adjusted")
            if diff is None or p is None:
                out.append(f"{variant} {criterion}: {cell.get('warning') or 'not tested'}")
                continue
            verdict = "significant" if cell.get("significant") else "not significant"
            out.append(f"{variant} {criterion}: {diff:+.3f} (p_adj {p:.3g}, {verdict})")
    return out


def group_lines(groups: Mapping[str, Any]) -> list[str]:
    """One line per category (its rows, each experiment's mean score) and one per comparison in it."""
    column = groups["column"]
    lines = [f"by {column} ({groups['family']}):"]
    for category, entry in groups["categories"].items():
        means = ", ".join(f"{name} {_mean(exp)}" for name, exp in entry["experiments"].items())
        lines.append(f"  {column}={category} ({entry['rows']} rows): {means}")
        if entry.get("comparisons") is None:
            lines.append(f"    {entry.get('note', 'not compared')}")
            continue
        lines += [f"    {line}" for line in verdicts(entry["comparisons"])]
    return lines
