"""Builtin datasources: ``csv`` (a local CSV file)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from elspeth.errors import ElspethError
from elspeth.hookspecs import Registrar, hookimpl
from elspeth.orchestration.context import PluginContext
from elspeth.types import Row, Table


class DataError(ElspethError):
    """The input data cannot be read as configured."""


class CsvDataSource:
    """Rows from a local CSV file with a header line."""

    name = "csv"

    class Options(BaseModel):
        """Options of the ``csv`` datasource."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field(description="the CSV file, relative to the settings file")
        encoding: str = Field("utf-8-sig", description="text encoding of the file")
        delimiter: str = Field(",", min_length=1, max_length=1, description="field separator")
        id_column: str | None = Field(None, description="column whose values are the row ids (default: row number)")

    def __init__(self, options: Options) -> None:
        self.options = options

    def load(self, ctx: PluginContext) -> Table:
        """Read the header now; rows are read lazily as the run takes them."""
        path = ctx.input_path(self.options.path)
        with self._open(path) as handle:
            header = next(csv.reader(handle, delimiter=self.options.delimiter), None)
        if not header:
            raise DataError(f"{path} is empty: a CSV file needs a header line")
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise DataError(f"{path} has duplicate column names in its header: {', '.join(duplicates)}")
        if self.options.id_column is not None and self.options.id_column not in header:
            raise DataError(
                f"id_column '{self.options.id_column}' is not a column of {path} (columns: {', '.join(header)})"
            )
        return Table(columns=list(header), rows=self._rows(path, header), source=str(path))

    def _open(self, path: Path):  # type: ignore[no-untyped-def]
        try:
            return path.open(newline="", encoding=self.options.encoding)
        except FileNotFoundError:
            raise DataError(f"file not found: {path}") from None
        except LookupError:
            raise DataError(f"unknown encoding '{self.options.encoding}'") from None

    def _rows(self, path: Path, header: list[str]) -> Iterator[Row]:
        id_at = header.index(self.options.id_column) if self.options.id_column else None
        width = len(header)
        seen: set[str] = set()
        with self._open(path) as handle:
            reader = csv.reader(handle, delimiter=self.options.delimiter)
            next(reader, None)
            index = 0
            for values in reader:
                if not values:
                    continue
                if len(values) != width:
                    raise DataError(f"{path.name} line {reader.line_num}: expected {width} fields, found {len(values)}")
                row_id = values[id_at] if id_at is not None else str(index + 1)
                if id_at is not None:
                    if row_id in seen:
                        raise DataError(
                            f"{path.name} line {reader.line_num}: duplicate id '{row_id}' in '{self.options.id_column}'"
                        )
                    seen.add(row_id)
                yield Row(row_id, dict(zip(header, values, strict=True)), index)
                index += 1


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register the builtin datasources."""
    register(CsvDataSource)
