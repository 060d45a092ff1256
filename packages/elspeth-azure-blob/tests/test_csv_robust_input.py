"""CSV blobs on awkward input, against Azurite: the same checks, options and messages as the local ``csv`` source.

Neither blob source may lose a row silently: a malformed line aborts the load naming its line, or is
skipped, counted and listed in the run's metadata.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import ConfigError, PluginContext, Row, Table, invoke, iterate_rows
from elspeth.config import load_settings_text
from elspeth.engine import run_settings
from elspeth_azure_blob import AzureBlobDataSource, BlobError, CsvBlobDataSource
from elspeth_testing import DataSourceContract
from elspeth_testing.plugin import MakeRegistry

SOURCES = [pytest.param(AzureBlobDataSource, id="azure_blob"), pytest.param(CsvBlobDataSource, id="csv_blob")]
MALFORMED = 'id,text\n1,fine\n2,too,many\n3,"unbalanced "quote\n4,ok\n5\n6,"never closed\n7,lost\n'


def put(service: Any, container: str, blob: str, data: str | bytes) -> None:
    service.get_blob_client(container, blob).upload_blob(data, overwrite=True)


def read(source: Any, ctx: PluginContext) -> tuple[Table, list[Row]]:
    async def go() -> tuple[Table, list[Row]]:
        table = await invoke(source.load, ctx)
        return table, [row async for row in iterate_rows(table.rows)]

    return asyncio.run(go())


@pytest.fixture
def source_of(service: Any, container: str, azure_env: dict[str, str]) -> Any:
    """``source_of(cls, content, **options)``: upload ``content`` as ``data.csv`` and build ``cls`` reading it."""

    def make(cls: Any, content: str | bytes, **options: Any) -> Any:
        put(service, container, "in/data.csv", content)
        where = {"container": container, "blob": "in/data.csv", "connection_string_env": "TEST_AZURITE_CONNECTION"}
        return cls(cls.Options.model_validate(where | options))

    return make


class TestTypedSkippingBlobContract(DataSourceContract):
    """Every robust-input option together still gives a source that keeps the datasource contract."""

    plugin_class = CsvBlobDataSource

    @pytest.fixture
    def plugin_options(self, service: Any, container: str, azure_env: dict[str, str]) -> dict[str, Any]:
        put(
            service,
            container,
            "typed.csv",
            "name,age,joined\nAnn,41,2024-01-02\nbad,line\nBéa,,2023-12-31\nAnn,41,2024-01-02\n".encode("cp1252"),
        )
        return {
            "container": container,
            "blob": "typed.csv",
            "connection_string_env": "TEST_AZURITE_CONNECTION",
            "encoding": "auto",
            "on_malformed": "skip",
            "id_from": "content_hash",
            "types": {"age": "int", "joined": "date"},
        }


# --- malformed lines: never a silent loss ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", SOURCES)
def test_an_unterminated_quote_aborts_the_load_naming_the_line(
    cls: Any, source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(cls, 'id,x\n1,"a\n2,b\n3,c\n')
    with pytest.raises(BlobError) as caught:
        source.load(plugin_context)
    assert str(caught.value) == (
        f"blob 'in/data.csv' in container '{container}' line 2: unterminated quoted field: the quote opened on "
        "line 2 is never closed; set on_malformed: skip to skip such lines"
    )


@pytest.mark.parametrize("cls", SOURCES)
def test_too_many_fields_aborts_the_load_naming_the_line(
    cls: Any, source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(cls, "id,x\n1,a\n2,b,extra\n3,c\n")
    with pytest.raises(
        BlobError, match=rf"^blob 'in/data.csv' in container '{container}' line 3: expected 2 fields, found 3; set"
    ):
        source.load(plugin_context)


@pytest.mark.parametrize("cls", SOURCES)
def test_skip_keeps_the_good_rows_and_lists_every_skipped_line(
    cls: Any, source_of: Any, container: str, plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_of(cls, MALFORMED, on_malformed="skip")
    with caplog.at_level(logging.WARNING, logger="elspeth"):
        _, rows = read(source, plugin_context)
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
    assert f"blob 'in/data.csv' in container '{container}' line 4 skipped: text after a closing quote" in caplog.text
    assert f"blob 'in/data.csv' in container '{container}': 4 malformed line(s) skipped" in caplog.text


def test_the_audit_example_is_one_skipped_record_not_one_silent_row(
    source_of: Any, plugin_context: PluginContext
) -> None:
    source = source_of(CsvBlobDataSource, 'id,x\n1,"a\n2,b\n3,c\n', on_malformed="skip")
    _, rows = read(source, plugin_context)
    assert rows == []
    assert source.summary()["skipped"] == [
        {"line": 2, "reason": "unterminated quoted field: the quote opened on line 2 is never closed"}
    ]


def test_skipped_lines_reach_the_run_metadata(
    service: Any, container: str, azure_env: dict[str, str], make_registry: MakeRegistry, tmp_path: Path
) -> None:
    put(service, container, "reviews.csv", "id,text\na,one\nb,two,three\nc,four\n")
    settings = f"""
datasource:
  plugin: csv_blob
  options: {{container: {container}, blob: reviews.csv, id_column: id, on_malformed: skip,
             connection_string_env: TEST_AZURITE_CONNECTION}}
orchestrator: rows
"""
    registry = make_registry("elspeth_azure_blob.plugin")
    result = run_settings(load_settings_text(settings, base_dir=tmp_path), registry)
    assert [r.row_id for r in result.records] == ["a", "c"]
    assert result.metadata.to_dict()["datasource"]["csv_blob"] == {
        "encoding": "utf-8-sig",
        "skipped": [{"line": 3, "reason": "expected 2 fields, found 3"}],
        "skipped_count": 1,
    }


def test_bad_data_stops_a_run_before_any_row_naming_the_blob(
    service: Any, container: str, azure_env: dict[str, str], make_registry: MakeRegistry, tmp_path: Path
) -> None:
    put(service, container, "n.csv", "n\n1\n2\nthree\n")
    settings = f"""
datasource:
  plugin: azure_blob
  options: {{container: {container}, blob: n.csv, types: {{n: int}}, connection_string_env: TEST_AZURITE_CONNECTION}}
orchestrator: rows
"""
    with pytest.raises(ConfigError) as caught:
        run_settings(load_settings_text(settings, base_dir=tmp_path), make_registry("elspeth_azure_blob.plugin"))
    assert (
        f"datasource 'azure_blob': blob 'n.csv' in container '{container}' line 4 (row id '3'), column 'n': "
        "'three' is not an integer (declared int in `types`)"
    ) in str(caught.value)


def test_without_the_check_first_a_bad_line_stops_the_rows_where_it_is_found(
    source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(CsvBlobDataSource, "id,x\n1,a\n2,b,extra\n3,c\n", check_before_run=False)
    table = source.load(plugin_context)  # only the header is read
    assert table.columns == ["id", "x"]
    rows = iter(table.rows)
    assert next(rows).data == {"id": "1", "x": "a"}
    with pytest.raises(BlobError, match=rf"in container '{container}' line 3: expected 2 fields, found 3"):
        next(rows)


def test_without_the_check_first_skipped_lines_are_counted_as_the_run_reads(
    source_of: Any, plugin_context: PluginContext
) -> None:
    source = source_of(AzureBlobDataSource, MALFORMED, on_malformed="skip", check_before_run=False)
    _, rows = read(source, plugin_context)
    assert [r.id for r in rows] == ["1", "4"]
    assert source.summary()["skipped_count"] == 4
    assert [s["line"] for s in source.summary()["skipped"]] == [3, 4, 6, 7]


# --- encodings ------------------------------------------------------------------------------------------------


def test_auto_encoding_falls_back_to_cp1252_and_says_why(
    source_of: Any, plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_of(CsvBlobDataSource, "id,text\n1,plain\n2,café — €5\n".encode("cp1252"), encoding="auto")
    with caplog.at_level(logging.INFO, logger="elspeth"):
        _, rows = read(source, plugin_context)
    assert rows[1].data["text"] == "café — €5"
    assert source.summary()["encoding"] == "cp1252"
    assert "encoding auto-detected as cp1252 (not UTF-8 at line 3, byte offset 21; cp1252 is the fallback)" in (
        caplog.text
    )


def test_auto_encoding_reads_utf16_with_its_byte_order_mark(source_of: Any, plugin_context: PluginContext) -> None:
    source = source_of(AzureBlobDataSource, "id,text\n1,héllo ✓\n".encode("utf-16"), encoding="auto")
    table, rows = read(source, plugin_context)
    assert table.columns == ["id", "text"]
    assert rows[0].data["text"] == "héllo ✓"
    assert source.summary()["encoding"] == "utf-16"


def test_a_wrong_explicit_encoding_names_the_blob_line_and_byte(
    source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(CsvBlobDataSource, "id,text\n1,plain\n2,café\n".encode("cp1252"), encoding="utf-8")
    with pytest.raises(BlobError) as caught:
        source.load(plugin_context)
    assert str(caught.value) == (
        f"blob 'in/data.csv' in container '{container}' line 3 (byte offset 21): cannot decode as utf-8: "
        "invalid continuation byte (byte 0xe9); set `encoding` to the file's encoding, or to 'auto'"
    )


def test_an_unknown_encoding_names_the_blob(source_of: Any, container: str, plugin_context: PluginContext) -> None:
    source = source_of(CsvBlobDataSource, "a\n1\n", encoding="klingon")
    with pytest.raises(
        BlobError, match=rf"unknown encoding 'klingon' for blob 'in/data.csv' in container '{container}'"
    ):
        source.load(plugin_context)


def test_a_json_lines_blob_that_does_not_decode_names_the_line_and_byte(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "rows.jsonl", '{"a": "x"}\n{"a": "café"}\n'.encode("cp1252"))
    source = AzureBlobDataSource(
        AzureBlobDataSource.Options(
            container=container, blob="rows.jsonl", encoding="utf-8", connection_string_env="TEST_AZURITE_CONNECTION"
        )
    )
    with pytest.raises(BlobError, match=r"'rows.jsonl' .* line 2 \(byte offset 21\): cannot decode as utf-8"):
        source.load(plugin_context)


# --- ids and declared types -----------------------------------------------------------------------------------


def test_declared_types_convert_values(source_of: Any, plugin_context: PluginContext) -> None:
    source = source_of(
        AzureBlobDataSource,
        "id,n,x,ok,day,note\nr1, 42 ,1.5e3,Yes,2024-02-29,007\nr2,-3,-0.25,false,1999-12-31,\n",
        id_column="id",
        types={"n": "int", "x": "float", "ok": "bool", "day": "date", "note": "str"},
    )
    _, rows = read(source, plugin_context)
    assert [dict(r.data) for r in rows] == [
        {"id": "r1", "n": 42, "x": 1500.0, "ok": True, "day": date(2024, 2, 29), "note": "007"},
        {"id": "r2", "n": -3, "x": -0.25, "ok": False, "day": date(1999, 12, 31), "note": None},
    ]


@pytest.mark.parametrize("cls", SOURCES)
def test_a_bad_value_names_the_blob_line_row_id_and_column(
    cls: Any, source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(cls, "id,when\nok,2024-01-01\nr7,31/12/2024\n", id_column="id", types={"when": "date"})
    with pytest.raises(BlobError) as caught:
        source.load(plugin_context)
    assert str(caught.value) == (
        f"blob 'in/data.csv' in container '{container}' line 3 (row id 'r7'), column 'when': '31/12/2024' is not "
        "a date as YYYY-MM-DD (declared date in `types`)"
    )


def test_a_declared_column_missing_from_the_header_is_named(
    source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    source = source_of(CsvBlobDataSource, "name\nann\n", types={"age": "int"})
    with pytest.raises(
        BlobError,
        match=rf"types: declared column 'age' not in the header of blob 'in/data.csv' in container '{container}'",
    ):
        source.load(plugin_context)


def test_duplicate_and_empty_ids_name_their_lines(
    source_of: Any, container: str, plugin_context: PluginContext
) -> None:
    with pytest.raises(BlobError, match=r"line 5: duplicate id 'a' in 'id' \(first on line 2\)$"):
        source_of(CsvBlobDataSource, "id,v\na,1\nb,2\n\na,3\n", id_column="id").load(plugin_context)
    with pytest.raises(BlobError, match=r"line 3: empty id in 'id'$"):
        source_of(CsvBlobDataSource, "id,v\na,1\n ,2\n", id_column="id").load(plugin_context)


def test_content_hash_ids_are_stable_wherever_the_row_stands(source_of: Any, plugin_context: PluginContext) -> None:
    _, first = read(source_of(CsvBlobDataSource, "a,b\nx,1\ny,2\nx,1\n", id_from="content_hash"), plugin_context)
    _, again = read(source_of(CsvBlobDataSource, "a,b\ny,2\nx,1\n", id_from="content_hash"), plugin_context)
    assert [r.id for r in first] == [first[0].id, first[1].id, f"{first[0].id}-2"]
    assert [r.id for r in again] == [first[1].id, first[0].id]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"on_malformed": "skip"}, "on_malformed applies to CSV only"),
        ({"types": {"a": "int"}, "id_from": "content_hash"}, "id_from, types apply to CSV only"),
        ({"id_column": "id", "id_from": "row_number", "blob": "x.csv"}, "set either id_column or id_from, not both"),
    ],
)
def test_options_that_do_not_fit_the_format_are_refused(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        AzureBlobDataSource.Options.model_validate(
            {"container": "c", "blob": "rows.jsonl", "connection_string_env": "X"} | options
        )
