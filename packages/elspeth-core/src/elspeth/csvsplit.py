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

The bytes need not be a local file: a source whose input can be read by ranges (a blob store's
ranged GETs) hands :class:`CsvPartitions` a picklable :class:`ByteRanges`, and every scan, check and
read then asks it for the bytes it needs, where it runs.

Example::

    planned = CsvPartitions(path, options, header, encoding="utf-8")
    parts = planned.partitions(16 << 20, lambda fn, items: [fn(i) for i in items])
    rows = [row for part in parts for row in part.read()]
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from elspeth.csvread import CsvOptions, CsvReader, Span
from elspeth.datatypes import Row

__all__ = [
    "ByteRanges",
    "CsvPartition",
    "CsvPartitions",
    "RangeFile",
    "RangeScan",
    "check_span",
    "header_end",
    "open_ranges",
    "scan_range",
    "splittable",
]

MapFn = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
_ONE_BYTE = {"utf-8", "cp1252", "latin-1", "iso8859-1", "ascii"}
_BLOCK = 1 << 16


@runtime_checkable
class ByteRanges(Protocol):
    """An input read by byte ranges (a blob's ranged GETs): small and picklable, read where it runs.

    Attributes:
        name: the input as messages name it, e.g. ``reviews.csv``.
    """

    @property
    def name(self) -> str:
        """The input as messages name it."""
        ...

    def size(self) -> int:
        """The input's length in bytes."""
        ...

    def read_range(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` (fewer only at the end of the input)."""
        ...


class RangeFile(io.RawIOBase):
    """A seekable read-only file over :class:`ByteRanges`: each read is one range request."""

    def __init__(self, ranges: ByteRanges) -> None:
        self._ranges, self._at, self._size = ranges, 0, ranges.size()

    def readable(self) -> bool:
        """Always: the file is read-only."""
        return True

    def seekable(self) -> bool:
        """Always: a read may start anywhere."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move where the next read starts (no request is made)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        """Where the next read starts."""
        return self._at

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from one range request; 0 at the end."""
        end = min(self._size, self._at + len(buffer))
        if end <= self._at:
            return 0
        data = self._ranges.read_range(self._at, end)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def open_ranges(ranges: ByteRanges, buffer_size: int = 1 << 20) -> IO[bytes]:
    """``ranges`` as a buffered file, for :class:`~elspeth.CsvReader`'s ``open_bytes``."""
    return io.BufferedReader(RangeFile(ranges), buffer_size=buffer_size)


def _read(source: str | ByteRanges, start: int, end: int) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)
    return source.read_range(start, end)


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


def scan_range(job: tuple[str | ByteRanges, int, int]) -> RangeScan:
    """Scan the bytes ``[start, end)`` of a file's path or :class:`ByteRanges` (run where it is read: a worker)."""
    source, start, end = job
    data = _read(source, start, end)
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


def header_end(path: Path | ByteRanges) -> tuple[int, int]:
    """The offset just after the header record and the newlines in it, reading only the header's bytes."""
    quotes, offset, newlines = 0, 0, 0
    with path.open("rb") if isinstance(path, Path) else open_ranges(path, _BLOCK) as handle:
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
    ranges: ByteRanges | None = None
    """Where the bytes are read when they are not the local file ``path`` (a blob): ``path`` then only names it."""

    @property
    def label(self) -> str:
        """The partition as messages name it: the file, its lines and bytes."""
        return f"{Path(self.path).name} from line {self.span.first_line} (bytes {self.span.start}-{self.span.end})"

    def reader(self) -> CsvReader:
        """A reader of this partition's bytes only."""
        path, ranges = Path(self.path), self.ranges
        if ranges is not None:  # the span's bytes in one range request (the buffer is as large as the span)
            size = max(1, self.span.end - self.span.start)
            return CsvReader(self.options, lambda: open_ranges(ranges, size), name=ranges.name, span=self.span)
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

    def __init__(
        self, path: Path, options: CsvOptions, header: list[str], *, encoding: str, ranges: ByteRanges | None = None
    ) -> None:
        self.path, self.options, self.header, self.encoding = path, options, header, encoding
        self.ranges = ranges
        """Where the bytes are read, when not from the local file ``path`` (which then only names the input)."""
        self.checks: list[SpanCheck] = []
        """What the checking pass found per partition (set by :meth:`partitions`)."""

    def partitions(self, target_bytes: int, map_fn: MapFn) -> list[CsvPartition]:
        """Plan and check the partitions; ``map_fn(fn, items)`` runs ``fn`` over ``items`` where the file is read.

        Raises:
            DataError: what checking a partition found (the first, in file order).
        """
        spans = self._spans(target_bytes, map_fn)
        parts = [
            CsvPartition(str(self.path), self.options, self.header, self.encoding, span, ranges=self.ranges)
            for span in spans
        ]
        self.checks = map_fn(check_span, parts)
        planned, number, index = [], 1, 0
        for part, check in zip(parts, self.checks, strict=True):
            span = Span(part.span.start, part.span.end, part.span.first_line, number, index)
            planned.append(
                CsvPartition(part.path, part.options, part.header, part.encoding, span, check.rows, self.ranges)
            )
            number, index = number + check.records, index + check.rows
        return planned

    def _spans(self, target_bytes: int, map_fn: MapFn) -> list[Span]:
        """Record-aligned spans from one scan of every range (line numbers set; record numbers not yet)."""
        source: str | ByteRanges = str(self.path) if self.ranges is None else self.ranges
        start, header_lines = header_end(self.path if self.ranges is None else self.ranges)
        size = self.path.stat().st_size if self.ranges is None else self.ranges.size()
        offsets = list(range(start, size, max(1, target_bytes)))
        scans: list[RangeScan] = map_fn(scan_range, [(source, a, min(a + target_bytes, size)) for a in offsets])
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
