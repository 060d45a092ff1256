"""What a run spent, summed over its attempts (the ledger, :mod:`elspeth.ledger`, keeps the running figures)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeGuard

__all__ = ["RunTotals", "is_number", "seconds_between"]


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


def seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO timestamp to a later one (0 if the second is earlier)."""
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
