"""The ``parquet`` datasource: rows from a local Parquet file, a record batch at a time.

Locally, :meth:`ParquetDataSource.load` checks the settings against the file's footer (and, with
``id_column``, the ids, reading that column only) and the run reads the rows lazily
(:func:`~elspeth_parquet.reading.read_rows`). On a cluster executor (``dask``)
:meth:`ParquetDataSource.open_partitioned` reads only the footer on the client: the rows are split
by row groups (:mod:`elspeth_parquet.parts`), each read where it is processed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elspeth import DeclaredPath, Row, Table
from elspeth_parquet.parts import ParquetPartitions
from elspeth_parquet.reading import ParquetError, ParquetOptions, chosen_columns, open_parquet, read_rows

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from elspeth import PluginContext

__all__ = ["ParquetDataSource", "ParquetError", "ParquetOptions"]


class ParquetDataSource:
    """Rows from a local Parquet file, read a batch at a time; split by row groups on a cluster."""

    name = "parquet"
    Options = ParquetOptions

    def __init__(self, options: ParquetOptions) -> None:
        self.options = options
        self._found: dict[str, Any] = {}

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The Parquet file, which no output of the run may replace."""
        return [DeclaredPath("path", ctx.input_path(self.options.path))]

    def summary(self) -> dict[str, Any]:
        """What the last load found: the file's rows and row groups (``{"rows": 1000, "row_groups": 4}``)."""
        return dict(self._found)

    def load(self, ctx: PluginContext) -> Table:
        """Check the settings against the footer (and ids, reading that column only); the rows are read lazily."""
        path = ctx.input_path(self.options.path)
        columns, handle = self._open(path)
        if self.options.id_column is not None:  # ids checked before any row is processed, as csv's are
            for _ in read_rows(path, [self.options.id_column], self.options):
                pass
        ctx.logger.info(
            "reading %s: %d rows in %d row groups", path.name, handle.metadata.num_rows, handle.num_row_groups
        )
        return Table(
            columns=columns, rows=_Rows(path, columns, self.options, handle.metadata.num_rows), source=str(path)
        )

    def open_partitioned(self, ctx: PluginContext) -> Table:
        """For a cluster executor: the footer only here, and rows as row-group partitions read on the workers."""
        path = ctx.input_path(self.options.path)
        columns, handle = self._open(path)
        sizes = [handle.metadata.row_group(k) for k in range(handle.num_row_groups)]
        groups = [(meta.num_rows, meta.total_byte_size) for meta in sizes]
        return Table(columns=columns, rows=ParquetPartitions(path, columns, self.options, groups), source=str(path))

    def _open(self, path: Path) -> tuple[list[str], pq.ParquetFile]:
        handle = open_parquet(path)
        try:
            columns = chosen_columns(path, list(handle.schema_arrow.names), self.options)
        finally:
            handle.close()
        self._found = {"rows": handle.metadata.num_rows, "row_groups": handle.num_row_groups}
        return columns, handle


class _Rows:
    """The file's rows, read afresh on each pass; ``len`` is the footer's count (known before any row is read)."""

    def __init__(self, path: Path, columns: list[str], options: ParquetOptions, count: int) -> None:
        self.path, self.columns, self.options, self.count = path, columns, options, count

    def __iter__(self) -> Iterator[Row]:
        return read_rows(self.path, self.columns, self.options)

    def __len__(self) -> int:
        return self.count
