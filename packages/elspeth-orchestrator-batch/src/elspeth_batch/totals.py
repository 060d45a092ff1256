"""Run-wide counts of the batch orchestrator: failures by stage, replies kept unparsed."""

from __future__ import annotations

from collections import Counter

__all__ = ["Totals"]


class Totals:
    """What the batch orchestrator counts of its own as rows finish (spending is the run's ledger's)."""

    def __init__(self) -> None:
        self.parse_errors_kept = 0
        self.stages: Counter[str] = Counter()
