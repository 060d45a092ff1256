"""Run-wide running totals of the batch orchestrator, and the count of rows a stopped run never started."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from elspeth import iterate_rows

if TYPE_CHECKING:
    from elspeth import LLMResponse, Row

__all__ = ["CountedRows", "Totals"]


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
        self.resumed = 0
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


class CountedRows:
    """The datasource's rows, counting those taken; after a stop, :meth:`count_rest` counts the rest.

    ``run_rows`` stops taking rows when the run is cancelled (a budget reached, an early stop); the
    rows it never took are counted by reading on without running them, so the metadata can say how
    many rows of the input were not run.

    Args:
        rows: the datasource's rows (sync or async).
        on_counted: called once with the input's row count as soon as it is known: when the last row
            is taken, or when :meth:`count_rest` has counted the rest.
    """

    def __init__(self, rows: Iterable[Row] | Any, on_counted: Callable[[int], None] | None = None) -> None:
        self._rows: AsyncIterator[Row] = iterate_rows(rows)
        self.taken = 0
        self._exhausted = False
        self._on_counted = on_counted

    def _counted(self, total: int) -> None:
        self._exhausted = True
        if self._on_counted is not None:
            self._on_counted(total)

    def __aiter__(self) -> CountedRows:
        return self

    async def __anext__(self) -> Row:
        try:
            row = await self._rows.__anext__()
        except StopAsyncIteration:
            if not self._exhausted:
                self._counted(self.taken)
            raise
        self.taken += 1
        return row

    async def count_rest(self) -> int:
        """Read the rows not taken yet, without keeping them, and return how many there were."""
        if self._exhausted:
            return 0
        rest = 0
        async for _ in self._rows:
            rest += 1
        self._counted(self.taken + rest)
        return rest
