"""The input's rows, counted as they are taken; after a stop, the rest counted without running them."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from elspeth._sync import iterate_rows
from elspeth.datatypes import Row

__all__ = ["CountedRows"]


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

    def __init__(
        self, rows: Iterable[Row] | AsyncIterable[Row], on_counted: Callable[[int], None] | None = None
    ) -> None:
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
