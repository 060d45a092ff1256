"""Byte-range partitions of a CSV file give exactly the rows a whole-file read gives, wherever the borders fall."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from elspeth.csvread import CsvOptions, CsvReader
from elspeth.csvsplit import CsvPartitions, header_end, open_ranges, scan_range, splittable
from elspeth.csvtext import DataError

HERE = [lambda fn, items: [fn(item) for item in items]][0]

# quoted fields holding newlines (LF and CRLF), doubled quotes, commas, an empty line, and a last line without newline
AWKWARD = (
    "id,text,n\r\n"
    'a1,"first\nline two\nline three",1\r\n'
    "a2,plain,2\r\n"
    'a3,"with ""quotes"" and, a comma",3\r\n'
    "\r\n"
    'a4,"crlf\r\ninside ""x""\r\n",4\r\n'
    + "".join(f'b{i},"row {i}\nhas ""{i}""\n",{i}\r\n' if i % 3 else f"b{i},short,{i}\r\n" for i in range(40))
    + 'z9,"last\nrow",99'
)


def whole(path: Path, options: CsvOptions) -> list[tuple[str, int, dict[str, object]]]:
    reader = CsvReader(options, lambda: path.open("rb"), name=path.name)
    header = reader.check()
    return [(r.id, r.index, dict(r.data)) for r in reader.rows(header)]


def split(path: Path, options: CsvOptions, size: int) -> list[tuple[str, int, dict[str, object]]]:
    header = CsvReader(options, lambda: path.open("rb"), name=path.name).read_header()
    parts = CsvPartitions(path, options, header, encoding=options.encoding).partitions(size, HERE)
    return [(r.id, r.index, dict(r.data)) for part in parts for r in part.read()]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 16, 64, 1 << 20])
@pytest.mark.parametrize("id_column", [None, "id"])
def test_partitions_at_every_border_give_the_whole_files_rows(tmp_path: Path, size: int, id_column: str | None) -> None:
    path = tmp_path / "awkward.csv"
    path.write_text(AWKWARD, encoding="utf-8", newline="")
    options = CsvOptions(encoding="utf-8", id_column=id_column, types={"n": "int"})
    expected = whole(path, options)
    assert len(expected) == 45
    assert split(path, options, size) == expected


def test_every_partition_starts_at_a_record_and_counts_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "awkward.csv"
    path.write_text(AWKWARD, encoding="utf-8", newline="")
    options = CsvOptions(encoding="utf-8")
    header = ["id", "text", "n"]
    parts = CsvPartitions(path, options, header, encoding="utf-8").partitions(40, HERE)
    assert len(parts) > 5
    assert sum(p.count or 0 for p in parts) == 45
    assert parts[0].span.start == header_end(path)[0] == len("id,text,n\r\n")
    data = path.read_bytes()
    for part in parts[1:]:
        assert data[part.span.start - 1 : part.span.start] == b"\n"
        assert [r.index for r in part.read()][:1] == [part.span.first_index]


def test_a_bad_value_is_reported_with_its_line_in_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    lines = ["id,n", *(f"r{i},{i}" for i in range(30)), "r30,notanumber", "r31,31"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = CsvOptions(encoding="utf-8", types={"n": "int"})
    # the checking pass does not know the record numbers before a partition yet: it names the line only
    with pytest.raises(DataError, match=r"bad.csv line 32, column 'n': 'notanumber' is not an integer"):
        CsvPartitions(path, options, ["id", "n"], encoding="utf-8").partitions(20, HERE)


def test_malformed_lines_skipped_keep_their_numbers_across_partitions(tmp_path: Path) -> None:
    path = tmp_path / "skips.csv"
    lines = ["id,n", *(f"{i}" if i in (4, 17) else f"{i},x" for i in range(30))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = CsvOptions(encoding="utf-8", on_malformed="skip")
    assert split(path, options, 9) == whole(path, options)
    planned = CsvPartitions(path, options, ["id", "n"], encoding="utf-8")
    planned.partitions(9, HERE)
    assert sum(c.skipped_count for c in planned.checks) == 2
    assert sorted(s["line"] for c in planned.checks for s in c.skipped) == [6, 19]


def test_scan_finds_the_first_boundary_for_either_start_state(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(b'x"\ny\nz')
    scan = scan_range((str(path), 0, 6))
    assert (scan.quotes, scan.newlines) == (1, 2)
    # started outside quotes, the lone quote opens a field that never closes: no boundary; started inside, the first
    assert scan.boundary == (None, 3)
    assert scan.lines == (0, 1)


def test_what_cannot_be_split_says_why() -> None:
    assert splittable(CsvOptions(encoding="utf-8")) is None
    assert splittable(CsvOptions(encoding="utf-8-sig")) is None
    assert "auto" in (splittable(CsvOptions(encoding="auto")) or "")
    assert "utf-16" in (splittable(CsvOptions(encoding="utf-16")) or "")
    assert "content_hash" in (splittable(CsvOptions(encoding="utf-8", id_from="content_hash")) or "")


@dataclass
class CountedRanges:
    """Bytes read by ranges, as a blob's ranged GETs read them, counting each request."""

    data: bytes
    name: str = "mem.csv"
    requests: list[tuple[int, int]] = field(default_factory=list)

    def size(self) -> int:
        return len(self.data)

    def read_range(self, start: int, end: int) -> bytes:
        self.requests.append((start, end))
        return self.data[start:end]


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_partitions_over_byte_ranges_give_the_local_files_rows(tmp_path: Path, size: int) -> None:
    path = tmp_path / "a.csv"
    path.write_text(AWKWARD, encoding="utf-8")
    options = CsvOptions(encoding="utf-8", id_column="id")
    ranges = CountedRanges(path.read_bytes())
    header = CsvReader(options, lambda: open_ranges(ranges), name=ranges.name).read_header()
    planned = CsvPartitions(Path("inputs/mem.csv"), options, header, encoding="utf-8", ranges=ranges)
    parts = planned.partitions(size, HERE)
    assert [(r.id, r.index, dict(r.data)) for p in parts for r in p.read()] == whole(path, options)
    assert parts[0].label.startswith("mem.csv from line 2 (bytes ")
    # reading a partition is one request for its bytes: never the whole input
    ranges.requests.clear()
    list(parts[-1].read())
    assert ranges.requests == [(parts[-1].span.start, parts[-1].span.end)]


def test_a_bad_value_read_by_ranges_names_the_input_and_line() -> None:
    ranges = CountedRanges(b"id,n\na,1\nb,x\n", name="blob 'n.csv'")
    options = CsvOptions(encoding="utf-8", types={"n": "int"})
    with pytest.raises(DataError, match=r"blob 'n.csv' line 3, column 'n': 'x' is not"):
        CsvPartitions(Path("n.csv"), options, ["id", "n"], encoding="utf-8", ranges=ranges).partitions(4, HERE)
