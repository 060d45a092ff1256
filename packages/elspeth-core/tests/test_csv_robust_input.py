"""The ``csv`` datasource on awkward input: encodings, malformed lines, row ids and declared column types."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from datetime import date
from typing import IO, Any

import pytest
from pydantic import ValidationError

from elspeth import ConfigError, ElspethError, PluginContext
from elspeth.builtins.datasources import CsvDataSource
from elspeth.csvread import CsvOptions, CsvReader
from elspeth_testing import DataSourceContract, read_table, run_async
from elspeth_testing.plugin import RunSettings, WriteSettings


def load(ctx: PluginContext, content: str | bytes, **options: Any) -> tuple[CsvDataSource, list[str], list[Any]]:
    path = ctx.base_dir / "data.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    source = CsvDataSource(CsvDataSource.Options(path="data.csv", **options))
    table, rows = run_async(read_table(source, ctx))
    return source, table.columns, rows


class TestTypedSkippingContract(DataSourceContract):
    """Every new option together still gives a source that keeps the datasource contract."""

    plugin_class = CsvDataSource

    @pytest.fixture
    def plugin_options(self, plugin_context: PluginContext) -> dict[str, Any]:
        (plugin_context.base_dir / "typed.csv").write_bytes(
            "name,age,joined\nAnn,41,2024-01-02\nbad,line\nBéa,,2023-12-31\nAnn,41,2024-01-02\n".encode("cp1252")
        )
        return {
            "path": "typed.csv",
            "encoding": "auto",
            "on_malformed": "skip",
            "id_from": "content_hash",
            "types": {"age": "int", "joined": "date"},
        }


# --- encoding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "chosen"),
    [
        ("id,text\n1,héllo ✓\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "id,text\n1,héllo ✓\n".encode(), "utf-8-sig"),
        ("id,text\n1,héllo ✓\n".encode("utf-16"), "utf-16"),  # with a BOM, little endian here
        ("id,text\n1,héllo ✓\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "utf-16"),
    ],
)
def test_auto_encoding_reads_utf8_and_utf16_and_says_which(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture, raw: bytes, chosen: str
) -> None:
    with caplog.at_level(logging.INFO, logger="elspeth"):
        source, columns, rows = load(plugin_context, raw, encoding="auto")
    assert columns == ["id", "text"]
    assert rows[0].data["text"] == "héllo ✓"
    assert f"data.csv: encoding auto-detected as {chosen}" in caplog.text
    assert source.summary()["encoding"] == chosen


def test_auto_encoding_falls_back_to_cp1252_and_names_the_first_non_utf8_byte(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="elspeth"):
        _, _, rows = load(plugin_context, "id,text\n1,plain\n2,café — €5\n".encode("cp1252"), encoding="auto")
    assert rows[1].data["text"] == "café — €5"
    assert "encoding auto-detected as cp1252 (not UTF-8 at line 3, byte offset 21; cp1252 is the fallback)" in (
        caplog.text
    )


def test_wrong_explicit_encoding_names_file_line_and_byte(plugin_context: PluginContext) -> None:
    content = "id,text\n1,plain\n2,café\n".encode("cp1252")
    with pytest.raises(
        ElspethError,
        match=r"^data\.csv line 3 \(byte offset 21\): cannot decode as utf-8: invalid continuation byte "
        r"\(byte 0xe9\); set `encoding` to the file's encoding, or to 'auto'$",
    ):
        load(plugin_context, content, encoding="utf-8")


def test_wrong_encoding_deep_in_a_large_file_names_the_right_line(plugin_context: PluginContext) -> None:
    content = b"id,text\n" + b"".join(b"%d,row\n" % i for i in range(20_000)) + b"x,\xff\n"
    with pytest.raises(ElspethError, match=r"^data\.csv line 20002 \(byte offset 188900\): cannot decode as utf-8-sig"):
        load(plugin_context, content)


def test_cp1252_fallback_that_cannot_decode_either_says_it_was_auto_detected(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"line 2 \(byte offset 6\): cannot decode as cp1252 \(auto-detected\)"):
        load(plugin_context, b"a,b\n1,\x81\n", encoding="auto")


def test_explicit_utf8_drops_a_bom_from_the_first_column(plugin_context: PluginContext) -> None:
    _, columns, _ = load(plugin_context, b"\xef\xbb\xbfid,v\n1,2\n", encoding="utf-8")
    assert columns == ["id", "v"]


# --- malformed lines ------------------------------------------------------------------------------------------

MALFORMED = 'id,text\n1,fine\n2,too,many\n3,"unbalanced "quote\n4,ok\n5\n6,"never closed\n7,lost\n'


def test_malformed_lines_abort_by_default_naming_the_first(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"^data\.csv line 3: expected 2 fields, found 3; set on_malformed: skip"):
        load(plugin_context, MALFORMED)


def test_skip_reports_each_malformed_line_with_its_reason(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    source, _, rows = load(plugin_context, MALFORMED, on_malformed="skip")
    assert [(r.id, r.data["text"]) for r in rows] == [("1", "fine"), ("4", "ok")]
    assert source.summary() == {
        "encoding": "utf-8-sig",
        "skipped": [
            {"line": 3, "reason": "expected 2 fields, found 3"},
            {"line": 4, "reason": 'text after a closing quote (a quote inside a quoted field must be doubled: "")'},
            {"line": 6, "reason": "expected 2 fields, found 1"},
            {"line": 7, "reason": "unterminated quoted field: the quote opened on line 7 is never closed"},
        ],
        "skipped_count": 4,
    }
    assert "data.csv line 4 skipped: text after a closing quote" in caplog.text
    assert "data.csv: 4 malformed line(s) skipped" in caplog.text


def test_unterminated_quote_aborts_naming_the_line_where_it_opened(plugin_context: PluginContext) -> None:
    with pytest.raises(
        ElspethError, match=r"^data\.csv line 3: unterminated quoted field: the quote opened on line 3 is never closed"
    ):
        load(plugin_context, 'id,text\n1,ok\n2,"open\n3,x\n4,y\n')


def test_a_quote_that_swallows_lines_says_which_lines(plugin_context: PluginContext) -> None:
    source, _, rows = load(plugin_context, 'a,b\n1,"x\n2,y\n3,"z\n4,w\n', on_malformed="skip")
    assert [r.data["a"] for r in rows] == ["4"]
    assert source.summary()["skipped"] == [
        {
            "line": 2,
            "reason": 'text after a closing quote (a quote inside a quoted field must be doubled: ""); '
            "the record runs over lines 2-4",
        }
    ]


def test_quoted_newlines_are_data_not_malformed(plugin_context: PluginContext) -> None:
    source, _, rows = load(plugin_context, 'id,text\n1,"two\nlines"\n2,x\n', on_malformed="skip")
    assert [r.data["text"] for r in rows] == ["two\nlines", "x"]
    assert source.summary()["skipped_count"] == 0


def test_skipped_lines_keep_their_number_so_other_ids_stay_stable(plugin_context: PluginContext) -> None:
    _, _, rows = load(plugin_context, "v\n1\n2,extra\n3\n", on_malformed="skip")
    assert [(r.id, r.index) for r in rows] == [("1", 0), ("3", 1)]


def test_a_malformed_header_is_always_an_error(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"^data\.csv line 1: the header is not valid CSV"):
        load(plugin_context, 'a,"b\n1,2\n', on_malformed="skip")


def test_summary_lists_at_most_a_thousand_lines_but_counts_all(plugin_context: PluginContext) -> None:
    source, _, rows = load(plugin_context, "a,b\n" + "1\n" * 1500 + "1,2\n", on_malformed="skip")
    summary = source.summary()
    assert len(rows) == 1
    assert summary["skipped_count"] == 1500
    assert len(summary["skipped"]) == 1000
    assert summary["skipped"][-1]["line"] == 1001


def test_bad_data_stops_a_run_before_any_row_is_processed(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        datasource: {plugin: csv, options: {path: data.csv, types: {n: int}}}
        orchestrator: rows
        """,
        {"data.csv": "n\n1\n2\nthree\n"},
    )
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    assert "datasource 'csv': data.csv line 4 (row id '3'), column 'n': 'three' is not an integer" in str(caught.value)


# --- row ids --------------------------------------------------------------------------------------------------


def test_duplicate_ids_name_both_lines(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"^data\.csv line 5: duplicate id 'a' in 'id' \(first on line 2\)$"):
        load(plugin_context, "id,v\na,1\nb,2\n\na,3\n", id_column="id")


def test_an_empty_id_is_an_error_naming_the_line(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"^data\.csv line 3: empty id in 'id'$"):
        load(plugin_context, "id,v\na,1\n ,2\n", id_column="id")


def test_content_hash_ids_are_stable_short_and_disambiguated_in_file_order(plugin_context: PluginContext) -> None:
    text = "a,b\nx,1\ny,2\nx,1\nx,1\n"
    _, _, rows = load(plugin_context, text, id_from="content_hash")
    ids = [r.id for r in rows]
    assert len(ids[0]) == 12
    assert set(ids[0]) <= set("0123456789abcdef")
    assert ids == [ids[0], ids[1], f"{ids[0]}-2", f"{ids[0]}-3"]
    assert ids[1] != ids[0]
    # the same values give the same id wherever they stand in the file
    _, _, again = load(plugin_context, "a,b\ny,2\nz,3\nx,1\n", id_from="content_hash")
    assert [r.id for r in again] == [ids[1], again[1].id, ids[0]]


def test_content_hash_does_not_depend_on_declared_types(plugin_context: PluginContext) -> None:
    _, _, plain = load(plugin_context, "a,b\nx,1\n", id_from="content_hash")
    _, _, typed = load(plugin_context, "a,b\nx,1\n", id_from="content_hash", types={"b": "int"})
    assert plain[0].id == typed[0].id


def test_id_column_and_id_from_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="set either id_column or id_from, not both"):
        CsvDataSource.Options(path="d.csv", id_column="id", id_from="row_number")


# --- declared types -------------------------------------------------------------------------------------------


def test_declared_types_convert_values(plugin_context: PluginContext) -> None:
    _, _, rows = load(
        plugin_context,
        "id,n,x,ok,day,note\nr1, 42 ,1.5e3,Yes,2024-02-29,007\nr2,-3,-0.25,false,1999-12-31,\n",
        id_column="id",
        types={"n": "int", "x": "float", "ok": "bool", "day": "date", "note": "str"},
    )
    assert dict(rows[0].data) == {
        "id": "r1",
        "n": 42,
        "x": 1500.0,
        "ok": True,
        "day": date(2024, 2, 29),
        "note": "007",
    }
    assert dict(rows[1].data) == {"id": "r2", "n": -3, "x": -0.25, "ok": False, "day": date(1999, 12, 31), "note": None}


@pytest.mark.parametrize(
    ("kind", "bad", "expected"),
    [
        ("int", "4.0", "an integer"),
        ("int", "1_000", "an integer"),
        ("float", "1,5", "a number"),
        ("bool", "maybe", "true/false, yes/no or 1/0"),
        ("date", "31/12/2024", "a date as YYYY-MM-DD"),
    ],
)
def test_a_bad_value_names_row_id_line_column_and_value(
    plugin_context: PluginContext, kind: str, bad: str, expected: str
) -> None:
    with pytest.raises(ElspethError) as caught:
        load(plugin_context, f'id,v\nok,\nr7,"{bad}"\n', id_column="id", types={"v": kind})
    assert str(caught.value) == (
        f"data.csv line 3 (row id 'r7'), column 'v': '{bad}' is not {expected} (declared {kind} in `types`)"
    )


def test_empty_cells_of_typed_columns_become_none_and_untyped_stay_empty(plugin_context: PluginContext) -> None:
    _, _, rows = load(plugin_context, "a,b,c\n,  ,\n", types={"a": "int", "b": "date"})
    assert dict(rows[0].data) == {"a": None, "b": None, "c": ""}


def test_empty_as_null_off_makes_an_empty_number_an_error_and_keeps_empty_text(plugin_context: PluginContext) -> None:
    _, _, rows = load(plugin_context, "a,b\n1,\n", types={"a": "int", "b": "str"}, empty_as_null=False)
    assert dict(rows[0].data) == {"a": 1, "b": ""}
    with pytest.raises(ElspethError, match=r"data\.csv line 2 \(row id '1'\), column 'a': '' is not an integer"):
        load(plugin_context, "a,b\n,x\n", types={"a": "int"}, empty_as_null=False)


def test_declared_columns_missing_from_the_header_are_named_at_load(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"types: declared columns 'age', 'day' not in the header of .*data\.csv"):
        load(plugin_context, "name\nann\n", types={"age": "int", "name": "str", "day": "date"})


def test_an_unknown_type_is_refused_by_the_options() -> None:
    with pytest.raises(ValidationError, match=r"types\.age"):
        CsvDataSource.Options(path="d.csv", types={"age": "integer"})


# --- the shared reader, as other distributions' CSV sources use it --------------------------------------------


class _Trickle(io.RawIOBase):
    """A byte stream that cannot seek and gives at most 7 bytes a read, as a network download may."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), 7, len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


def trickle(data: bytes) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    def opener() -> contextlib.AbstractContextManager[IO[bytes]]:
        return io.BufferedReader(_Trickle(data), buffer_size=16)

    return opener


def test_the_shared_reader_works_over_a_stream_that_cannot_seek(caplog: pytest.LogCaptureFixture) -> None:
    data = "id,text\n1,plain\n2,café — €5\n3,too,many\n".encode("cp1252")
    options = CsvOptions(encoding="auto", on_malformed="skip", id_column="id")
    reader = CsvReader(options, trickle(data), name="stream.csv", logger=logging.getLogger("elspeth"))
    with caplog.at_level(logging.INFO, logger="elspeth"):
        columns = reader.check()
    assert columns == ["id", "text"]
    assert [r.data["text"] for r in reader.rows(columns)] == ["plain", "café — €5"]
    assert reader.summary() == {
        "encoding": "cp1252",
        "skipped": [{"line": 4, "reason": "expected 2 fields, found 3"}],
        "skipped_count": 1,
    }
    assert "stream.csv: encoding auto-detected as cp1252 (not UTF-8 at line 3, byte offset 21" in caplog.text


def test_the_shared_reader_raises_the_callers_error_type_naming_its_place() -> None:
    class SourceError(ElspethError):
        pass

    reader = CsvReader(
        CsvOptions(types={"n": "int"}),
        trickle(b"n\n1\nx\n"),
        name="blob 'n.csv'",
        place="blob 'n.csv'",
        error=SourceError,
    )
    with pytest.raises(SourceError, match=r"^blob 'n\.csv' line 3 \(row id '2'\), column 'n': 'x' is not an integer"):
        reader.check()
    with pytest.raises(SourceError, match=r"^blob 'n\.csv' is empty: a CSV file needs a header line$"):
        CsvReader(CsvOptions(), trickle(b""), name="blob 'n.csv'", error=SourceError).check()


def test_rows_without_a_check_count_their_own_skips() -> None:
    reader = CsvReader(CsvOptions(on_malformed="skip"), trickle(b"a,b\n1,2\n3\n4,5\n"), name="s.csv")
    columns = reader.read_header()
    assert [r.id for r in reader.rows(columns, count_skips=True)] == ["1", "3"]
    assert reader.summary()["skipped"] == [{"line": 3, "reason": "expected 2 fields, found 1"}]


def test_data_error_is_still_importable_from_the_builtin_datasources() -> None:
    from elspeth.builtins.datasources import DataError as Old
    from elspeth.csvread import DataError

    assert Old is DataError
