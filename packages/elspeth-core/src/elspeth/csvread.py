"""Reading CSV robustly: encodings, malformed records, row ids and declared column types.

The builtin ``csv`` datasource reads local files through :class:`CsvReader`, and so do datasources of
other distributions (``csv_blob`` and ``azure_blob`` in ``elspeth-azure-blob``), so every CSV source
offers the same options (:class:`CsvOptions`), checks the same things and words its errors alike.
A source hands the reader a callable that opens its bytes afresh (it is called once per pass, and
again to locate a byte that cannot be decoded) and names for its messages.

Example::

    reader = CsvReader(options, lambda: path.open("rb"), name=path.name, place=str(path), logger=ctx.logger)
    columns = reader.check()          # the whole input once: decoding, structure, ids, declared types
    rows = reader.rows(columns)       # then again, lazily, as the run takes the rows
    reader.summary()                  # {"encoding": "utf-8", "skipped": [...], "skipped_count": 0}
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth.csvtext import (
    CONVERTERS,
    EXPECTED,
    ColumnType,
    DataError,
    OpenBytes,
    choose_encoding,
    decode_error,
    detect_encoding,
    locate_decode_error,
)
from elspeth.datatypes import Row
from elspeth.errors import ElspethError

__all__ = [
    "MAX_LISTED",
    "ColumnType",
    "CsvOptions",
    "CsvReader",
    "DataError",
    "OpenBytes",
    "Skips",
    "choose_encoding",
    "decode_error",
    "detect_encoding",
    "locate_decode_error",
]


_NUL = "a NUL byte in a field (is this a binary file?); set allow_nul: true if the data really holds them"
_SHOWN = 20  # columns named in a message about the header

MAX_LISTED = 1000
"""At most this many skipped lines are listed (and logged); ``skipped_count`` counts them all."""


class CsvOptions(BaseModel):
    """The reading options every CSV datasource shares; a datasource's ``Options`` subclasses this."""

    model_config = ConfigDict(extra="forbid")

    encoding: str = Field(
        "utf-8-sig",
        description="text encoding of the input, or 'auto': a UTF-8 or UTF-16 byte order mark, "
        "else UTF-8 if the whole input is valid UTF-8, else cp1252",
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="field separator")
    id_column: str | None = Field(None, description="column whose values are the row ids (must be unique)")
    id_from: Literal["row_number", "content_hash"] = Field(
        "row_number",
        description="without id_column: the record's number in the input, or a short hash of its values "
        "(repeats get -2, -3, ... in input order)",
    )
    on_malformed: Literal["abort", "skip"] = Field(
        "abort",
        description="a line with the wrong number of fields or broken quoting stops the load, or is skipped",
    )
    types: dict[str, ColumnType] = Field(
        default_factory=dict, description="column to int, float, bool, str or date (YYYY-MM-DD); values converted"
    )
    empty_as_null: bool = Field(True, description="an empty cell of a typed column becomes null")
    allow_nul: bool = Field(False, description="accept NUL bytes in fields (refused by default: a sign of binary data)")

    @model_validator(mode="after")
    def _one_id_source(self) -> CsvOptions:
        if self.id_column is not None and "id_from" in self.model_fields_set:
            raise ValueError("set either id_column or id_from, not both")
        return self


@dataclass
class Skips:
    """Malformed lines skipped while reading: the first :data:`MAX_LISTED` listed, all counted."""

    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, reason: str) -> bool:
        """Count a skipped line; True if it was also listed."""
        self.count += 1
        if len(self.items) < MAX_LISTED:
            self.items.append({"line": line, "reason": reason})
            return True
        return False


def _listed(names: list[str]) -> str:
    """At most :data:`_SHOWN` names, then how many more."""
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown}, ... ({len(names) - _SHOWN:,} more)"


def _csv_reason(message: str, start: int, end: int) -> str:
    if "unexpected end of data" in message:
        return f"unterminated quoted field: the quote opened on line {start} is never closed"
    if "expected after" in message:
        reason = 'text after a closing quote (a quote inside a quoted field must be doubled: "")'
    else:
        reason = f"not valid CSV: {message}"
    return reason if end == start else f"{reason}; the record runs over lines {start}-{end}"


class CsvReader:
    """Reads one CSV input with a header line as :class:`~elspeth.Row` objects, as :class:`CsvOptions` say.

    Args:
        options: the reading options.
        open_bytes: opens the input's bytes from the start; called once per pass.
        name: the input as line-level messages name it, e.g. ``data.csv``.
        place: the input as whole-input messages name it, e.g. its full path (default: ``name``).
        logger: where the chosen encoding and skipped lines are logged.
        error: the exception type raised for bad data (a subclass of :class:`~elspeth.ElspethError`).

    """

    def __init__(
        self,
        options: CsvOptions,
        open_bytes: OpenBytes,
        *,
        name: str,
        place: str | None = None,
        logger: logging.Logger | None = None,
        error: type[ElspethError] = DataError,
    ) -> None:
        self.options = options
        self.name = name
        self.place = place or name
        self.encoding = options.encoding
        """The encoding in use: the option, or once :meth:`read_header` ran, what ``auto`` chose."""
        self.skips = Skips()
        """The malformed lines skipped by the counting pass (:meth:`check`, or ``rows(count_skips=True)``)."""
        self.checked_rows: int | None = None
        """How many rows :meth:`check` read (None until it ran): what every later pass gives."""
        self._open_bytes = open_bytes
        self._logger = logger or logging.getLogger("elspeth")
        self._error = error
        self._chosen = False

    def summary(self) -> dict[str, Any]:
        """The encoding used and the malformed lines skipped (first 1,000 listed).

        Example::

            {"encoding": "utf-8", "skipped": [{"line": 3, "reason": "expected 2 fields, found 3"}], "skipped_count": 1}

        """
        return {"encoding": self.encoding, "skipped": list(self.skips.items), "skipped_count": self.skips.count}

    def read_header(self) -> list[str]:
        """Choose the encoding (detecting it for ``auto``), then read and check the header: the columns.

        Raises:
            ElspethError: an unknown or wrong encoding, an empty input, a malformed header, duplicate
                column names, or an ``id_column`` or declared type naming a column the header lacks.

        """
        if not self._chosen:
            self.encoding = choose_encoding(
                self.options.encoding,
                self._open_bytes,
                name=self.name,
                place=self.place,
                logger=self._logger,
                error=self._error,
            )
            self._chosen = True
        with self._open_text() as text:
            reader = self._reader(text)
            try:
                header: list[str] | None = next((values for values in reader if values), None)
            except UnicodeDecodeError:
                raise self._decode_error() from None
            except csv.Error as exc:
                raise self._error(f"{self.name} line 1: the header is not valid CSV: {exc}") from None
        if not header:
            raise self._error(f"{self.place} is empty: a CSV file needs a header line")
        header[0] = header[0].removeprefix("\ufeff")
        self._check_header(header)
        return header

    def _check_header(self, header: list[str]) -> None:
        """Every check of the header in one linear pass: a 200,000-column header takes milliseconds."""
        names = set(header)
        if len(names) != len(header):
            duplicates = sorted(c for c, n in Counter(header).items() if n > 1)
            raise self._error(f"{self.place} has duplicate column names in its header: {_listed(duplicates)}")
        if not self.options.allow_nul and "\0" in "".join(header):
            at = next(i for i, c in enumerate(header) if "\0" in c)
            raise self._error(f"{self.name} line 1, column {at + 1}: {_NUL}")
        if self.options.id_column is not None and self.options.id_column not in names:
            raise self._error(
                f"id_column '{self.options.id_column}' is not a column of {self.place} (columns: {_listed(header)})"
            )
        missing = [c for c in self.options.types if c not in names]
        if missing:
            raise self._error(
                f"types: declared column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                f"not in the header of {self.place} (columns: {_listed(header)})"
            )

    def check(self) -> list[str]:
        """Read the header, then every record once, so bad data is found before any row is used.

        Malformed lines skipped (``on_malformed: skip``) are logged and kept for :meth:`summary`.

        Returns:
            The columns.

        Raises:
            ElspethError: what :meth:`read_header` raises, a malformed line (``on_malformed: abort``),
                an empty or duplicate id, or a value that is not of its declared type.

        """
        header = self.read_header()
        count = 0
        for _ in self.rows(header, count_skips=True):
            count += 1
        self.checked_rows = count
        if not count:
            self._logger.warning("warning: %s has a header but no data rows: the run has nothing to do", self.name)
        return header

    def rows(self, header: list[str], *, count_skips: bool = False) -> Iterator[Row]:
        """The rows, read lazily from a fresh pass over the input.

        Args:
            header: the columns :meth:`read_header` returned.
            count_skips: make this the pass whose skipped lines are logged and kept for :meth:`summary`
                (a pass after :meth:`check` need not count them again).

        """
        if count_skips:
            self.skips = Skips()
        skips = self.skips if count_skips else None
        yield from self._rows(header, skips)
        if skips is not None and skips.count:
            self._logger.warning("%s: %d malformed line(s) skipped", self.name, skips.count)

    @contextmanager
    def _open_text(self) -> Iterator[io.TextIOWrapper]:
        with self._open_bytes() as raw, io.TextIOWrapper(raw, encoding=self.encoding, newline="") as text:
            yield text

    def _decode_error(self) -> ElspethError:
        return decode_error(
            self._open_bytes,
            self.encoding,
            name=self.name,
            detected=self.options.encoding.lower() == "auto",
            error=self._error,
        )

    def _reader(self, handle: io.TextIOWrapper) -> Any:
        return csv.reader(handle, delimiter=self.options.delimiter, strict=True)

    def _records(self, width: int, skips: Skips | None) -> Iterator[tuple[int, int, list[str]]]:
        """(first line, record number, values) of every well-formed record; malformed ones are skipped or raised."""
        with self._open_text() as handle:
            reader = self._reader(handle)
            number = 0
            header_seen = False
            allow_nul = self.options.allow_nul
            while True:
                start = reader.line_num + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise self._decode_error() from None
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
                        if not allow_nul and "\0" in "".join(values):
                            column = next(i for i, v in enumerate(values) if "\0" in v) + 1
                            raise self._error(f"{self.name} line {start}, column {column}: {_NUL}")
                        yield start, number, values
                        continue
                    reason = f"expected {width} fields, found {len(values)}"
                    if reader.line_num > start:
                        reason += f"; the record runs over lines {start}-{reader.line_num} (an unbalanced quote?)"
                number += 1  # a skipped record keeps its number, so fixing it later leaves other ids alone
                if self.options.on_malformed == "abort":
                    raise self._error(f"{self.name} line {start}: {reason}; set on_malformed: skip to skip such lines")
                if skips is not None and skips.add(start, reason):
                    self._logger.warning("%s line %d skipped: %s", self.name, start, reason)

    def _rows(self, header: list[str], skips: Skips | None) -> Iterator[Row]:
        opts = self.options
        id_at = header.index(opts.id_column) if opts.id_column else None
        typed = [(header.index(c), c, t, CONVERTERS[t]) for c, t in opts.types.items()]
        first_line: dict[str, int] = {}
        hashes: dict[str, int] = {}
        index = 0
        for line, number, values in self._records(len(header), skips):
            if id_at is not None:
                row_id = values[id_at]
                if not row_id.strip():
                    raise self._error(f"{self.name} line {line}: empty id in '{opts.id_column}'")
                if row_id in first_line:
                    raise self._error(
                        f"{self.name} line {line}: duplicate id '{row_id}' in '{opts.id_column}' "
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
                    raise self._error(
                        f"{self.name} line {line} (row id '{row_id}'), column '{column}': "
                        f"{text!r} is not {EXPECTED[kind]} (declared {kind} in `types`)"
                    ) from None
            yield Row(row_id, data, index)
            index += 1
