"""Run-wide running totals of the batch orchestrator."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elspeth import LLMResponse

__all__ = ["Totals"]


class Totals:
    """Run-wide sums, updated as rows finish.

    ``calls``, the tokens and the latency count live calls only: an answer from the response cache
    costs nothing and is counted in ``cache_hits`` instead.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.cache_hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        self.priced = 0
        self.latency_s = 0.0
        self.parse_errors_kept = 0
        self.stages: Counter[str] = Counter()

    def add(self, response: LLMResponse) -> None:
        """Count one answer: a live call, or a cache hit (whose cost is 0)."""
        cost = response.metrics.get("cost")
        if cost is not None:
            self.cost += float(cost)
            self.priced += 1
        if response.cached:
            self.cache_hits += 1
            return
        self.calls += 1
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        self.latency_s += response.latency_s
