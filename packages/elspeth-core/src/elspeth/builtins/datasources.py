"""Builtin datasources: ``csv`` (a local CSV file).

The whole file is checked when it is loaded (decoding, CSV structure, ids, declared types), so bad
data stops a run, and ``elspeth validate``, before any row is processed; the rows are then read
again lazily as the run takes them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth.errors import ElspethError
from elspeth.hookspecs import Registrar, hookimpl
from elspeth.types import Row, Table

if TYPE_CHECKING:
    from elspeth.orchestration.context import PluginContext

__all__ = ["CsvDataSource", "DataError"]

ColumnType = Literal["int", "float", "bool", "str", "date"]
_MAX_LISTED = 1000
"""At most this many skipped lines are listed in ``summary()``; ``skipped_count`` counts them all."""
_INT = re.compile(r"[+-]?\d+")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class DataError(ElspethError):
    """The input data cannot be read as configured."""


def _to_int(text: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise ValueError
    return int(text)


def _to_float(text: str) -> float:
    if "_" in text:
        raise ValueError
    return float(text)


def _to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError


def _to_date(text: str) -> date:
    return date.fromisoformat(text.strip())


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": str,
    "date": _to_date,
}
_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true/false, yes/no or 1/0",
    "str": "text",
    "date": "a date as YYYY-MM-DD",
}


def _detect(path: Path) -> tuple[str, str]:
    """The encoding ``auto`` picks for ``path``, and why."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig", "UTF-8 byte order mark"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", "UTF-16 byte order mark"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            line, offset, _ = _locate_decode_error(path, "utf-8")
            return "cp1252", f"not UTF-8 at line {line}, byte offset {offset}; cp1252 is the fallback"
    return "utf-8", "valid UTF-8"


def _locate_decode_error(path: Path, encoding: str) -> tuple[int, int, str]:
    """Line (1-based), byte offset (0-based) and reason of the first byte ``encoding`` cannot decode."""
    if codecs.lookup(encoding).name == "utf-8-sig":
        encoding = "utf-8"  # the BOM is skipped below; utf-8-sig would count offsets from after it
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines = 0
    with path.open("rb") as handle:
        consumed = 3 if encoding == "utf-8" and handle.read(3) == codecs.BOM_UTF8 else 0
        handle.seek(consumed)
        while True:
            chunk = handle.read(1 << 16)
            state = decoder.getstate()
            try:
                newlines += decoder.decode(chunk, final=not chunk).count("\n")
            except UnicodeDecodeError as exc:
                # the decoder saw its pending bytes (state[0]) followed by this chunk
                pending = len(state[0])
                before = codecs.getincrementaldecoder(encoding)()
                before.setstate(state)
                good = before.decode(chunk[: max(exc.start - pending, 0)])
                bad = bytes(exc.object[exc.start : exc.end]).hex(" ")
                line = newlines + good.count("\n") + 1
                return line, consumed - pending + exc.start, f"{exc.reason} (byte 0x{bad})"
            consumed += len(chunk)
            if not chunk:
                return newlines + 1, consumed, "undecodable data"


@dataclass
class _Skips:
    """Malformed lines skipped while reading, for ``summary()``."""

    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.items) < _MAX_LISTED:
            self.items.append({"line": line, "reason": reason})


def _csv_reason(message: str, start: int, end: int) -> str:
    if "unexpected end of data" in message:
        return f"unterminated quoted field: the quote opened on line {start} is never closed"
    if "expected after" in message:
        reason = 'text after a closing quote (a quote inside a quoted field must be doubled: "")'
    else:
        reason = f"not valid CSV: {message}"
    return reason if end == start else f"{reason}; the record runs over lines {start}-{end}"


class CsvDataSource:
    """Rows from a local CSV file with a header line."""

    name = "csv"

    class Options(BaseModel):
        """Options of the ``csv`` datasource."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field(description="the CSV file, relative to the settings file")
        encoding: str = Field(
            "utf-8-sig",
            description="text encoding of the file, or 'auto': a UTF-8 or UTF-16 byte order mark, "
            "else UTF-8 if the whole file is valid UTF-8, else cp1252",
        )
        delimiter: str = Field(",", min_length=1, max_length=1, description="field separator")
        id_column: str | None = Field(None, description="column whose values are the row ids (must be unique)")
        id_from: Literal["row_number", "content_hash"] = Field(
            "row_number",
            description="without id_column: the record's number in the file, or a short hash of its values "
            "(repeats get -2, -3, ... in file order)",
        )
        on_malformed: Literal["abort", "skip"] = Field(
            "abort",
            description="a line with the wrong number of fields or broken quoting stops the load, or is skipped",
        )
        types: dict[str, ColumnType] = Field(
            default_factory=dict, description="column to int, float, bool, str or date (YYYY-MM-DD); values converted"
        )
        empty_as_null: bool = Field(True, description="an empty cell of a typed column becomes null")

        @model_validator(mode="after")
        def _one_id_source(self) -> CsvDataSource.Options:
            if self.id_column is not None and "id_from" in self.model_fields_set:
                raise ValueError("set either id_column or id_from, not both")
            return self

    def __init__(self, options: Options) -> None:
        self.options = options
        self._skips = _Skips()
        self._encoding = options.encoding

    def summary(self) -> dict[str, Any]:
        """What the last load found: the encoding used and the malformed lines skipped (first 1,000 listed).

        Example::

            {"encoding": "utf-8", "skipped": [{"line": 3, "reason": "expected 2 fields, found 3"}], "skipped_count": 1}

        """
        return {"encoding": self._encoding, "skipped": list(self._skips.items), "skipped_count": self._skips.count}

    def load(self, ctx: PluginContext) -> Table:
        """Check the whole file, then return its columns and a lazy reader of its rows."""
        path = ctx.input_path(self.options.path)
        if not path.is_file():
            raise DataError(f"file not found: {path}")
        self._encoding = self._choose_encoding(path, ctx)
        header = self._header(path)
        self._skips = _Skips()
        for _ in self._rows(path, header, self._skips):
            pass
        for skip in self._skips.items:
            ctx.logger.warning("%s line %d skipped: %s", path.name, skip["line"], skip["reason"])
        if self._skips.count:
            ctx.logger.warning("%s: %d malformed line(s) skipped", path.name, self._skips.count)
        return Table(columns=list(header), rows=self._rows(path, header, _Skips()), source=str(path))

    def _choose_encoding(self, path: Path, ctx: PluginContext) -> str:
        if self.options.encoding.lower() != "auto":
            try:
                codecs.lookup(self.options.encoding)
            except LookupError:
                raise DataError(f"unknown encoding '{self.options.encoding}'") from None
            return self.options.encoding
        encoding, why = _detect(path)
        ctx.logger.info("%s: encoding auto-detected as %s (%s)", path.name, encoding, why)
        return encoding

    def _decode_error(self, path: Path) -> DataError:
        line, offset, reason = _locate_decode_error(path, self._encoding)
        chosen = " (auto-detected)" if self.options.encoding.lower() == "auto" else ""
        return DataError(
            f"{path.name} line {line} (byte offset {offset}): cannot decode as {self._encoding}{chosen}: {reason}; "
            "set `encoding` to the file's encoding, or to 'auto'"
        )

    def _reader(self, handle: Any) -> Any:
        return csv.reader(handle, delimiter=self.options.delimiter, strict=True)

    def _header(self, path: Path) -> list[str]:
        with path.open(newline="", encoding=self._encoding) as handle:
            reader = self._reader(handle)
            try:
                header: list[str] | None = next((values for values in reader if values), None)
            except UnicodeDecodeError:
                raise self._decode_error(path) from None
            except csv.Error as exc:
                raise DataError(f"{path.name} line 1: the header is not valid CSV: {exc}") from None
        if not header:
            raise DataError(f"{path} is empty: a CSV file needs a header line")
        header[0] = header[0].removeprefix("\ufeff")
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise DataError(f"{path} has duplicate column names in its header: {', '.join(duplicates)}")
        columns = ", ".join(header)
        if self.options.id_column is not None and self.options.id_column not in header:
            raise DataError(f"id_column '{self.options.id_column}' is not a column of {path} (columns: {columns})")
        missing = [c for c in self.options.types if c not in header]
        if missing:
            raise DataError(
                f"types: declared column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                f"not in the header of {path} (columns: {columns})"
            )
        return header

    def _records(self, path: Path, width: int, skips: _Skips) -> Iterator[tuple[int, int, list[str]]]:
        """(first line, record number, values) of every well-formed record; malformed ones are skipped or raised."""
        with path.open(newline="", encoding=self._encoding) as handle:
            reader = self._reader(handle)
            number = 0
            header_seen = False
            while True:
                start = reader.line_num + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise self._decode_error(path) from None
                except csv.Error as exc:
                    reason = _csv_reason(str(exc), start, reader.line_num)
                else:
                    if not values:
                        continue
                    if not header_seen:
                        header_seen = True
                        continue
                    if len(values) == width:
                        number += 1
                        yield start, number, values
                        continue
                    reason = f"expected {width} fields, found {len(values)}"
                    if reader.line_num > start:
                        reason += f"; the record runs over lines {start}-{reader.line_num} (an unbalanced quote?)"
                number += 1  # a skipped record keeps its number, so fixing it later leaves other ids alone
                if self.options.on_malformed == "abort":
                    raise DataError(f"{path.name} line {start}: {reason}; set on_malformed: skip to skip such lines")
                skips.add(start, reason)

    def _rows(self, path: Path, header: list[str], skips: _Skips) -> Iterator[Row]:
        opts = self.options
        id_at = header.index(opts.id_column) if opts.id_column else None
        typed = [(header.index(c), c, t, _CONVERTERS[t]) for c, t in opts.types.items()]
        first_line: dict[str, int] = {}
        hashes: dict[str, int] = {}
        index = 0
        for line, number, values in self._records(path, len(header), skips):
            if id_at is not None:
                row_id = values[id_at]
                if not row_id.strip():
                    raise DataError(f"{path.name} line {line}: empty id in '{opts.id_column}'")
                if row_id in first_line:
                    raise DataError(
                        f"{path.name} line {line}: duplicate id '{row_id}' in '{opts.id_column}' "
                        f"(first on line {first_line[row_id]})"
                    )
                first_line[row_id] = line
            elif opts.id_from == "content_hash":
                canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
                digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
                hashes[digest] = seen = hashes.get(digest, 0) + 1
                row_id = digest if seen == 1 else f"{digest}-{seen}"
            else:
                row_id = str(number)
            data: dict[str, Any] = dict(zip(header, values, strict=True))
            for at, column, kind, convert in typed:
                text = values[at]
                if not text.strip() and (opts.empty_as_null or kind == "str"):
                    data[column] = None if opts.empty_as_null else text
                    continue
                try:
                    data[column] = convert(text)
                except ValueError:
                    raise DataError(
                        f"{path.name} line {line} (row id '{row_id}'), column '{column}': "
                        f"{text!r} is not {_EXPECTED[kind]} (declared {kind} in `types`)"
                    ) from None
            yield Row(row_id, data, index)
            index += 1


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register the builtin datasources."""
    register(CsvDataSource)
