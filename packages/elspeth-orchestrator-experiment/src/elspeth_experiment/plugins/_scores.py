"""Which criteria a comparison covers. The rows themselves are read by :mod:`elspeth_experiment.plugins._rows`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["criteria_of"]


def criteria_of(tables: Sequence[dict[str, Any]], only: Sequence[str] | None) -> list[str]:
    """The criteria to compare: ``only`` if given, else every criterion seen, in first-seen order."""
    if only is not None:
        return list(only)
    seen: dict[str, None] = {}
    for table in tables:
        seen.update(dict.fromkeys(table))
    return list(seen)
