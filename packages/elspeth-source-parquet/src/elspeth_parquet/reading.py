"""Reading a local Parquet file as rows, a record batch at a time, checked against the settings.

A Parquet file is typed and self-describing, so there is no encoding or quoting to check; what can
be wrong is the file (missing, not Parquet), the settings (a column it does not hold) and, with
``id_column``, the ids (empty or repeated). The rows are never held whole: pyarrow reads them a row
group at a time and :func:`read_rows` turns one batch into rows before it asks for the next.

:mod:`elspeth_parquet.parts` reads the same way, one partition's row groups at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import ElspethError, Row

if TYPE_CHECKING:
    import pyarrow.parquet as pq

__all__ = ["ParquetError", "ParquetOptions", "chosen_columns", "open_parquet", "read_rows"]

_SHOWN = 20  # columns named in a message


class ParquetError(ElspethError):
    """The Parquet input cannot be read as configured (exit code 2, as for any bad input)."""


class ParquetOptions(BaseModel):
    """Options of the ``parquet`` datasource."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the Parquet file, relative to the settings file")
    columns: list[str] | None = Field(
        None, min_length=1, description="the columns to read, in this order (default: every column of the file)"
    )
    id_column: str | None = Field(
        None, description="column whose values are the row ids (must be unique, never null); default: the row number"
    )
    batch_rows: int = Field(
        10_000, ge=1, le=1_000_000, description="rows converted at a time: what memory holds besides one row group"
    )


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown}, ... ({len(names) - _SHOWN:,} more)"


def open_parquet(path: Path) -> pq.ParquetFile:
    """The file opened (its footer read, no rows), or a :class:`ParquetError` naming it.

    Raises:
        ParquetError: the file is missing, not a regular file, or not Parquet.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise ParquetError(f"file not found: {path}")
    if not path.is_file():
        raise ParquetError(f"{path} is not a file (a directory of Parquet files is not supported: name one file)")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ParquetError(f"{path} is not a readable Parquet file: {exc}") from None


def chosen_columns(path: Path, file_columns: list[str], options: ParquetOptions) -> list[str]:
    """The table's columns: ``columns`` or the file's, each checked against the file's schema.

    Raises:
        ParquetError: ``columns`` or ``id_column`` names a column the file lacks, or a column repeats.
    """
    known = set(file_columns)
    columns = list(options.columns) if options.columns is not None else file_columns
    missing = [c for c in columns if c not in known]
    if missing:
        raise ParquetError(
            f"columns: {', '.join(map(repr, missing))} not in {path} (its columns: {_listed(file_columns)})"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ParquetError(f"columns: {', '.join(map(repr, repeated))} listed more than once (reading {path})")
    if options.id_column is not None and options.id_column not in known:
        raise ParquetError(
            f"id_column '{options.id_column}' is not a column of {path} (its columns: {_listed(file_columns)})"
        )
    return columns


def read_rows(
    path: Path, columns: list[str], options: ParquetOptions, *, row_groups: Sequence[int] | None = None, first: int = 0
) -> Iterator[Row]:
    """The rows of ``row_groups`` (default: all), numbered from ``first``, one batch converted at a time.

    Ids are ``id_column``'s values as text, else the row's number in the whole file (from 1), so a
    partition's rows are identified as a read of the whole file identifies them.

    Raises:
        ParquetError: a null or repeated id (naming the row), or data that cannot be decoded.
    """
    import pyarrow as pa

    id_column = options.id_column
    wanted = columns if id_column is None or id_column in columns else [*columns, id_column]
    handle = open_parquet(path)
    groups = list(range(handle.num_row_groups)) if row_groups is None else list(row_groups)
    seen: dict[str, int] = {}
    index = first
    try:
        for batch in handle.iter_batches(batch_size=options.batch_rows, row_groups=groups, columns=wanted):
            values = [batch.column(name).to_pylist() for name in columns]
            ids = batch.column(id_column).to_pylist() if id_column is not None else None
            for at, row in enumerate(zip(*values, strict=True)):
                row_id = str(index + 1) if ids is None else _checked_id(path, id_column, ids[at], index, seen)
                yield Row(row_id, dict(zip(columns, row, strict=True)), index)
                index += 1
    except pa.ArrowException as exc:
        raise ParquetError(f"{path}: cannot read row groups {_span(groups)}: {exc}") from None
    finally:
        handle.close()


def _checked_id(path: Path, column: str | None, value: Any, index: int, seen: dict[str, int]) -> str:
    if value is None or not str(value).strip():
        raise ParquetError(f"{path} row {index + 1}: empty id in '{column}'")
    row_id = str(value)
    if row_id in seen:
        raise ParquetError(
            f"{path} row {index + 1}: duplicate id '{row_id}' in '{column}' (first in row {seen[row_id] + 1})"
        )
    seen[row_id] = index
    return row_id


def _span(groups: Sequence[int]) -> str:
    if not groups:
        return "(none)"
    return f"{groups[0]}" if len(groups) == 1 else f"{groups[0]}-{groups[-1]}"
