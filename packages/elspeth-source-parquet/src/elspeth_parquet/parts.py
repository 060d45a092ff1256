"""A Parquet file's rows as partitions of whole row groups, planned from the footer alone.

The footer lists every row group's rows and bytes, so the client plans the partitions without
reading a row: consecutive row groups are put together until a partition holds about the target
bytes (several small row groups go in one partition; a row group is never split, since it is the
unit Parquet reads). Each partition knows its first row's position, so its rows are numbered and
identified as a read of the whole file gives them. With ``id_column`` each partition's ids are
checked on the worker that will read it (that column only) before any row is processed.

Example::

    planned = ParquetPartitions(path, ["id", "text"], options, [(1000, 65536), (1000, 65536)])
    parts = planned.partitions(16 << 20, lambda fn, items: [fn(i) for i in items])
    rows = [row for part in parts for row in part.read()]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elspeth import Row
from elspeth_parquet.reading import ParquetOptions, read_rows

__all__ = ["ParquetPartition", "ParquetPartitions", "check_ids", "plan_groups"]

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def plan_groups(groups: Sequence[tuple[int, int]], target_bytes: int) -> list[list[int]]:
    """Consecutive row groups (``(rows, bytes)`` each) put together until each part holds about ``target_bytes``.

    Row groups without rows are left out: they hold nothing to read.
    """
    planned: list[list[int]] = []
    current: list[int] = []
    size = 0
    for k, (rows, nbytes) in enumerate(groups):
        if not rows:
            continue
        if current and size + nbytes > target_bytes:
            planned.append(current)
            current, size = [], 0
        current.append(k)
        size += nbytes
    if current:
        planned.append(current)
    return planned


@dataclass(frozen=True)
class ParquetPartition:
    """Whole row groups of one Parquet file: picklable, read where it is processed."""

    path: str
    columns: tuple[str, ...]
    options: ParquetOptions
    row_groups: tuple[int, ...]
    first_index: int
    rows: int

    @property
    def count(self) -> int:
        """Its rows, from the footer."""
        return self.rows

    @property
    def label(self) -> str:
        """The partition as messages name it: the file, its row groups and rows."""
        groups = self.row_groups
        span = f"row group {groups[0]}" if len(groups) == 1 else f"row groups {groups[0]}-{groups[-1]}"
        return f"{Path(self.path).name} {span} (rows {self.first_index + 1}-{self.first_index + self.rows})"

    def read(self) -> Iterator[Row]:
        """Its rows, a batch at a time, numbered and identified as in the whole file."""
        return read_rows(
            Path(self.path), list(self.columns), self.options, row_groups=self.row_groups, first=self.first_index
        )


def check_ids(part: ParquetPartition) -> int:
    """Read a partition's ``id_column`` only, raising for an empty or repeated id (run on a worker); its rows."""
    assert part.options.id_column is not None
    ids = read_rows(
        Path(part.path), [part.options.id_column], part.options, row_groups=part.row_groups, first=part.first_index
    )
    return sum(1 for _ in ids)


class ParquetPartitions:
    """A Parquet file's rows as partitions of about ``target_bytes`` of whole row groups.

    It is a :class:`~elspeth.Table`'s ``rows``: a cluster executor calls :meth:`partitions`; anything
    else iterates it, which reads the partitions here, one after another.

    Args:
        path: the file.
        columns: the table's columns.
        options: the datasource's options.
        groups: every row group's ``(rows, bytes)``, from the footer.
    """

    def __init__(
        self, path: Path, columns: list[str], options: ParquetOptions, groups: Sequence[tuple[int, int]]
    ) -> None:
        self.path, self.columns, self.options, self.groups = path, columns, options, list(groups)

    def partitions(self, target_bytes: int, map_fn: MapFn) -> list[ParquetPartition]:
        """Plan the partitions from the footer; with ``id_column``, check their ids through ``map_fn`` first.

        Raises:
            ParquetError: an empty or repeated id within a partition (the first, in file order).
        """
        starts, at = [], 0
        for rows, _ in self.groups:
            starts.append(at)
            at += rows
        parts = [
            ParquetPartition(
                str(self.path),
                tuple(self.columns),
                self.options,
                tuple(chosen),
                starts[chosen[0]],
                sum(self.groups[k][0] for k in chosen),
            )
            for chosen in plan_groups(self.groups, target_bytes)
        ]
        if self.options.id_column is not None:
            map_fn(check_ids, parts)
        return parts

    def __iter__(self) -> Iterator[Row]:
        for part in self.partitions(16 << 20, lambda fn, items: [fn(item) for item in items]):
            yield from part.read()
