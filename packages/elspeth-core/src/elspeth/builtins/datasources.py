"""Builtin datasources: ``csv`` (a local CSV file).

The whole file is checked when it is loaded (decoding, CSV structure, ids, declared types), so bad
data stops a run, and ``elspeth validate``, before any row is processed; the rows are then read
again lazily as the run takes them. The reading itself is :class:`elspeth.csvread.CsvReader`, which
CSV datasources of other distributions share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from elspeth.csvread import CsvOptions, CsvReader, DataError
from elspeth.datatypes import Table
from elspeth.outputs import DeclaredPath

if TYPE_CHECKING:
    from collections.abc import Iterator

    from elspeth.datatypes import Row
    from elspeth.orchestration.context import PluginContext

__all__ = ["CsvDataSource", "DataError"]


class CsvDataSource:
    """Rows from a local CSV file with a header line."""

    name = "csv"

    class Options(CsvOptions):
        """Options of the ``csv`` datasource."""

        path: str = Field(description="the CSV file, relative to the settings file")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._reader: CsvReader | None = None

    def summary(self) -> dict[str, Any]:
        """What the last load found: the encoding used and the malformed lines skipped (first 1,000 listed).

        Example::

            {"encoding": "utf-8", "skipped": [{"line": 3, "reason": "expected 2 fields, found 3"}], "skipped_count": 1}

        """
        if self._reader is None:
            return {"encoding": self.options.encoding, "skipped": [], "skipped_count": 0}
        return self._reader.summary()

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The CSV file, which no output of the run may replace."""
        return [DeclaredPath("path", ctx.input_path(self.options.path))]

    def load(self, ctx: PluginContext) -> Table:
        """Check the whole file, then return its columns and a lazy reader of its rows."""
        path = ctx.input_path(self.options.path)
        if not path.is_file():
            raise DataError(f"file not found: {path}")
        reader = CsvReader(self.options, lambda: path.open("rb"), name=path.name, place=str(path), logger=ctx.logger)
        self._reader = reader
        header = reader.check()
        return Table(columns=list(header), rows=_CheckedRows(reader, header), source=str(path))


class _CheckedRows:
    """A checked CSV's rows, read lazily on each pass; ``len`` is the count the checking pass found.

    The count lets an orchestrator that streams the rows report the run's size up front, so that
    ``elspeth runs list`` shows how many rows are pending while the run is going (or after a kill).
    """

    def __init__(self, reader: CsvReader, header: list[str]) -> None:
        self._reader = reader
        self._header = header

    def __iter__(self) -> Iterator[Row]:
        return self._reader.rows(self._header)

    def __len__(self) -> int:
        return self._reader.checked_rows or 0
