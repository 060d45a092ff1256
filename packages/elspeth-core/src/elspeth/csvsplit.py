"""Splitting a local CSV file into byte-range partitions without reading it on the client.

A cluster executor reads each partition where it is processed. Finding where records start is the
hard part: a newline inside a quoted field is not a record boundary, and whether a byte is inside
quotes depends on every quote before it. So each byte range is scanned where it is read, for both
states it may start in (outside or inside quotes): how many quotes and newlines it holds, and its
first record boundary in either state. The client then walks the ranges in order, knowing the state
at each range's start from the quotes before it, and picks each range's true boundary, with no
second pass over the bytes. A second pass on the workers checks each partition (the checks
:meth:`~elspeth.csvread.CsvReader.check` makes) and counts its records, so row numbers, ids and line
numbers are those of the whole file.

This needs an encoding in which the quote and the newline are single bytes that never occur inside another
character (UTF-8, cp1252, Latin-1, ASCII), quotes only around fields (RFC 4180), and ids that a
partition can compute alone (``id_column`` or the record number, not ``content_hash``, whose repeats
are numbered across the file). Otherwise :func:`splittable` says why and the rows are read on the
client and shipped in chunks.

Example::

    planned = CsvPartitions(path, options, header, encoding="utf-8")
    parts = planned.partitions(16 << 20, lambda fn, items: [fn(i) for i in items])
    rows = [row for part in parts for row in part.read()]
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elspeth.csvread import CsvOptions, CsvReader, Span
from elspeth.datatypes import Row

__all__ = ["CsvPartition", "CsvPartitions", "RangeScan", "check_span", "header_end", "scan_range", "splittable"]

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
_ONE_BYTE = {"utf-8", "cp1252", "latin-1", "iso8859-1", "ascii"}
_BLOCK = 1 << 16


def splittable(options: CsvOptions) -> str | None:
    """None if a file read with ``options`` can be split by bytes, else why not (for the log)."""
    if options.encoding.lower() == "auto":
        return "encoding 'auto' reads the whole file to detect it"
    try:
        name = codecs.lookup(options.encoding).name
    except LookupError:
        return None  # the reader reports the unknown encoding
    if name.removesuffix("-sig") not in _ONE_BYTE:
        return f"encoding '{options.encoding}' may hold quote and newline bytes inside other characters"
    if options.id_column is None and options.id_from == "content_hash":
        return "id_from: content_hash numbers repeated rows across the whole file"
    return None


@dataclass(frozen=True)
class RangeScan:
    """What one byte range holds, for each state it may start in (index 0: outside quotes, 1: inside).

    Attributes:
        quotes: the quote bytes in the range.
        newlines: the newline bytes in the range.
        boundary: per start state, the offset just after the range's first newline outside quotes (None: none).
        lines: per start state, the newlines from the range's start up to that boundary.
    """

    quotes: int
    newlines: int
    boundary: tuple[int | None, int | None]
    lines: tuple[int, int]


def scan_range(job: tuple[str, int, int]) -> RangeScan:
    """Scan the bytes ``[start, end)`` of ``path`` (run where the file is read: a cluster worker)."""
    path, start, end = job
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    boundary: list[int | None] = [None, None]
    lines = [0, 0]
    quotes, at, newlines = 0, 0, 0
    while None in boundary:
        found = data.find(b"\n", at)
        if found < 0:
            break
        quotes += data.count(b'"', at, found)
        newlines += 1
        state = quotes & 1  # outside quotes here if the range started in this state
        if boundary[state] is None:
            boundary[state], lines[state] = start + found + 1, newlines
        at = found + 1
    return RangeScan(data.count(b'"'), data.count(b"\n"), (boundary[0], boundary[1]), (lines[0], lines[1]))


def header_end(path: Path) -> tuple[int, int]:
    """The offset just after the header record and the newlines in it, reading only the header's bytes."""
    quotes, offset, newlines = 0, 0, 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            at = 0
            while (found := block.find(b"\n", at)) >= 0:
                quotes += block.count(b'"', at, found)
                newlines += 1
                if not quotes & 1:
                    return offset + found + 1, newlines
                at = found + 1
            quotes += block.count(b'"', at)
            offset += len(block)
    return offset, newlines


@dataclass(frozen=True)
class CsvPartition:
    """One byte range of a CSV file holding whole records: picklable, read where it is processed."""

    path: str
    options: CsvOptions
    header: list[str]
    encoding: str
    span: Span
    count: int | None = None
    """The rows in it (known once the checking pass ran)."""

    @property
    def label(self) -> str:
        """The partition as messages name it: the file, its lines and bytes."""
        return f"{Path(self.path).name} from line {self.span.first_line} (bytes {self.span.start}-{self.span.end})"

    def reader(self) -> CsvReader:
        """A reader of this partition's bytes only."""
        path = Path(self.path)
        return CsvReader(self.options, lambda: path.open("rb"), name=path.name, place=self.path, span=self.span)

    def read(self) -> Iterator[Row]:
        """The partition's rows, numbered and identified as in the whole file."""
        reader = self.reader()
        reader.encoding = self.encoding
        return reader.rows(self.header)


@dataclass(frozen=True)
class SpanCheck:
    """What checking one partition found: its records (malformed ones too), its rows and the lines skipped."""

    records: int
    rows: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_count: int = 0


def check_span(part: CsvPartition) -> SpanCheck:
    """Check a partition as :meth:`CsvReader.check` checks a file, counting its records (run on a worker).

    Raises:
        DataError: malformed data (``on_malformed: abort``), a duplicate or empty id, a value not of its type.
    """
    reader = part.reader()
    reader.encoding = part.encoding
    rows = sum(1 for _ in reader.rows(part.header, count_skips=True))
    # a malformed record that is skipped keeps its number: the partition's records are its rows and its skips
    return SpanCheck(rows + reader.skips.count, rows, reader.skips.items, reader.skips.count)


class CsvPartitions:
    """A CSV file's rows as partitions of about ``target_bytes`` each, planned where they are read.

    It is a :class:`~elspeth.Table`'s ``rows``: a cluster executor calls :meth:`partitions`; anything
    else iterates it, which plans and reads the partitions here, one after another.
    """

    def __init__(self, path: Path, options: CsvOptions, header: list[str], *, encoding: str) -> None:
        self.path, self.options, self.header, self.encoding = path, options, header, encoding
        self.checks: list[SpanCheck] = []
        """What the checking pass found per partition (set by :meth:`partitions`)."""

    def partitions(self, target_bytes: int, map_fn: MapFn) -> list[CsvPartition]:
        """Plan and check the partitions; ``map_fn(fn, items)`` runs ``fn`` over ``items`` where the file is read.

        Raises:
            DataError: what checking a partition found (the first, in file order).
        """
        spans = self._spans(target_bytes, map_fn)
        parts = [CsvPartition(str(self.path), self.options, self.header, self.encoding, span) for span in spans]
        self.checks = map_fn(check_span, parts)
        planned, number, index = [], 1, 0
        for part, check in zip(parts, self.checks, strict=True):
            span = Span(part.span.start, part.span.end, part.span.first_line, number, index)
            planned.append(CsvPartition(part.path, part.options, part.header, part.encoding, span, check.rows))
            number, index = number + check.records, index + check.rows
        return planned

    def _spans(self, target_bytes: int, map_fn: MapFn) -> list[Span]:
        """Record-aligned spans from one scan of every range (line numbers set; record numbers not yet)."""
        start, header_lines = header_end(self.path)
        size = self.path.stat().st_size
        offsets = list(range(start, size, max(1, target_bytes)))
        scans: list[RangeScan] = map_fn(scan_range, [(str(self.path), a, min(a + target_bytes, size)) for a in offsets])
        bounds = [(start, header_lines + 1)] if offsets else []
        state, lines = 0, header_lines
        for k, scan in enumerate(scans):
            boundary = scan.boundary[state]
            if k and boundary is not None and boundary < size:
                bounds.append((boundary, lines + scan.lines[state] + 1))
            state ^= scan.quotes & 1
            lines += scan.newlines
        ends = [b for b, _ in bounds[1:]] + [size]
        return [Span(b, end, line, numbered=False) for (b, line), end in zip(bounds, ends, strict=True)]

    def __iter__(self) -> Iterator[Row]:
        for part in self.partitions(16 << 20, lambda fn, items: [fn(item) for item in items]):
            yield from part.read()
