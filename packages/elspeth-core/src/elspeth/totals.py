"""What a run spent: its totals over every attempt, and the running sum its store keeps as rows are written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeGuard

__all__ = ["RunTotals", "Spending", "is_number", "row_totals", "seconds_between"]


@dataclass(frozen=True)
class RunTotals:
    """What a run spent, summed over its attempts.

    Attributes:
        cost: money spent, in the cost tracker's currency (0 without a cost tracker).
        prompt_tokens: prompt tokens of live (not cached) calls.
        completion_tokens: completion tokens of live calls.
        llm_calls: LLM calls made, as the cost tracker (or the orchestrator) counted them.
        duration_s: wall time of every attempt.

    """

    cost: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    duration_s: float = 0.0

    def __add__(self, other: RunTotals) -> RunTotals:
        return RunTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: RunTotals) -> RunTotals:
        return RunTotals(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (cost to 8 places, duration to the microsecond)."""
        return {
            "cost": round(self.cost, 8),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "llm_calls": self.llm_calls,
            "duration_s": round(self.duration_s, 6),
        }


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class Spending:
    """Cost and tokens summed from rows' metrics, record or failure (a cached answer cost nothing).

    Mutable and plain on purpose: a run's store adds every row to one as the row is written.
    """

    __slots__ = ("completion", "cost", "last", "prompt")

    def __init__(self, last: str = "") -> None:
        self.cost, self.prompt, self.completion, self.last = 0.0, 0, 0, last

    def add(self, metrics: Any) -> None:
        """Add one row's cost and tokens, from its metrics (nothing for a cached answer or no metrics)."""
        if not metrics or not isinstance(metrics, dict | Mapping) or metrics.get("cached"):
            return
        cost, prompt, completion = metrics.get("cost"), metrics.get("prompt_tokens"), metrics.get("completion_tokens")
        if is_number(cost):
            self.cost += cost
        if is_number(prompt):
            self.prompt += int(prompt)
        if is_number(completion):
            self.completion += int(completion)

    def totals(self, duration_s: float = 0.0) -> RunTotals:
        """The sum so far, with ``duration_s`` as its wall time."""
        return RunTotals(self.cost, self.prompt, self.completion, duration_s=duration_s)


def row_totals(payloads: list[str]) -> RunTotals:
    """Cost and tokens of committed rows, from their metrics (a failed row's paid calls count too)."""
    spending = Spending()
    for payload in payloads:
        spending.add(json.loads(payload).get("metrics"))
    return spending.totals()


def seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO timestamp to a later one (0 if the second is earlier)."""
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
