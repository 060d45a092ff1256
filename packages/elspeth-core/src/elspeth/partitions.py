"""Partitions: a datasource's rows in parts that a cluster executor reads and runs where they are processed.

A datasource may offer partitions (optional): besides ``load`` it has ``open_partitioned(ctx)``,
which returns a :class:`~elspeth.Table` whose ``rows`` is :class:`Partitioned` (or None when these
options cannot be split). The engine calls it instead of ``load`` only for an executor that reads
partitions (``reads_partitions = True``, as ``dask`` does), so the client opens the header and no
more. The builtin ``csv`` datasource splits by byte ranges (:mod:`elspeth.csvsplit`). A source
without partitions still runs on a cluster: the executor reads its rows here and ships them in
chunks (:func:`shipped_chunks`).

Rows worked out elsewhere come back to the client's row runner through :class:`ShippedResults`:
the orchestrator runs on the client unchanged, over the rows in input order, and for each row the
runner takes the result the worker found instead of working on it, then commits and keeps it as
usual (so sinks see one ordered result and the run store is written here).

Example::

    class MySource:
        def open_partitioned(self, ctx):
            return Table(columns=["id", "text"], rows=MyParts(ctx.input_path(self.options.path)))

    class MyParts:
        def partitions(self, target_bytes, map_fn):
            return [MyPart(path, start, end) for start, end in ranges(self.path, target_bytes)]
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from elspeth._sync import iterate_rows
from elspeth.datatypes import Failure, Record, Row

if TYPE_CHECKING:
    from elspeth.ledger import Spend

__all__ = ["MapFn", "Partition", "Partitioned", "ShippedResults", "ShippedRows", "shipped_chunks"]

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""``map_fn(fn, items)``: ``fn`` run over every item where the data is read (a cluster's workers), results in order."""


@runtime_checkable
class Partition(Protocol):
    """One part of a source's rows: small and picklable, read where it is processed.

    Attributes:
        label: the partition as messages name it (``data.csv from line 2 (bytes 10-4096)``).
        count: its rows, if known before it is read.
    """

    @property
    def label(self) -> str:
        """The partition as messages name it."""
        ...

    @property
    def count(self) -> int | None:
        """Its rows, if known before reading."""
        ...

    def read(self) -> Iterator[Row]:
        """Its rows, with ``index`` and ``id`` as a read of the whole source gives them."""
        ...


@runtime_checkable
class Partitioned(Protocol):
    """A table's ``rows`` that can be split: the executor asks for partitions of about ``target_bytes``."""

    def partitions(self, target_bytes: int, map_fn: MapFn) -> Sequence[Partition]:
        """Plan the partitions, running any scan of the data through ``map_fn``; raises ``DataError`` for bad data."""
        ...


@dataclass(frozen=True)
class ShippedRows:
    """Rows read on the client and shipped to a worker: the partition of a source that has none."""

    rows: list[Row]

    @property
    def label(self) -> str:
        """The rows' positions in the input."""
        first, last = self.rows[0], self.rows[-1]
        return f"rows {first.index + 1}-{last.index + 1} (ids {first.id}..{last.id})"

    @property
    def count(self) -> int:
        """How many rows it holds."""
        return len(self.rows)

    def read(self) -> Iterator[Row]:
        """The rows as they were read."""
        return iter(self.rows)


async def shipped_chunks(rows: Iterable[Row] | AsyncIterable[Row], size: int) -> AsyncIterator[ShippedRows]:
    """``rows`` in chunks of ``size`` (read as the chunks are asked for, so memory holds one chunk)."""
    chunk: list[Row] = []
    index = 0
    async for row in iterate_rows(rows):
        chunk.append(row if row.index == index else Row(row.id, row.data, index))
        index += 1
        if len(chunk) >= size:
            yield ShippedRows(chunk)
            chunk = []
    if chunk:
        yield ShippedRows(chunk)


Finished = Record | Failure


class ShippedResults:
    """Results of rows worked out on a worker, by ``(group, row_id)``, each taken once by the client's row runner."""

    def __init__(self, *, committed: bool = False) -> None:
        self._items: dict[tuple[str | None, str], tuple[Finished, Spend]] = {}
        self.committed = committed
        """The workers committed these rows to the run's shared store (``store.url``): the runner only keeps them."""

    def add(self, group: str | None, row_id: str, item: Finished, spend: Spend) -> None:
        """Hold a row's result (and what its calls spent) until the runner reaches the row."""
        self._items[group, row_id] = (item, spend)

    def take(self, group: str | None, row_id: str) -> tuple[Finished, Spend] | None:
        """The row's result and spend, removed; None for a row not worked out elsewhere."""
        return self._items.pop((group, row_id), None)

    def __len__(self) -> int:
        return len(self._items)
