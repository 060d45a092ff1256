"""The ``csv`` datasource: the datasource contract, then what is particular to CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elspeth import ElspethError, PluginContext
from elspeth.builtins.datasources import CsvDataSource
from elspeth_testing import DataSourceContract, read_table, run_async


class TestCsvContract(DataSourceContract):
    plugin_class = CsvDataSource

    @pytest.fixture
    def plugin_options(self, plugin_context: PluginContext) -> dict[str, Any]:
        (plugin_context.base_dir / "reviews.csv").write_text(
            'id,product,review\nr1,kettle,Boils fast\nr2,toaster,"Even, but slow"\nr3,fan,Quiet ✓\n',
            encoding="utf-8",
        )
        return {"path": "reviews.csv", "id_column": "id"}


class TestCsvContractWithoutIdColumn(TestCsvContract):
    @pytest.fixture
    def plugin_options(self, plugin_context: PluginContext) -> dict[str, Any]:
        (plugin_context.base_dir / "plain.csv").write_text("a;b\n1;2\n3;4\n", encoding="utf-8")
        return {"path": "plain.csv", "delimiter": ";"}


def read(ctx: PluginContext, text: str | bytes, **options: Any) -> tuple[list[str], list[Any]]:
    path = ctx.base_dir / "data.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    source = CsvDataSource(CsvDataSource.Options(path="data.csv", **options))
    table, rows = run_async(read_table(source, ctx))
    return table.columns, rows


def test_id_column_gives_row_ids(plugin_context: PluginContext) -> None:
    columns, rows = read(plugin_context, "name,key\nann,k9\nbob,k2\n", id_column="key")
    assert columns == ["name", "key"]
    assert [(r.id, r.index, dict(r.data)) for r in rows] == [
        ("k9", 0, {"name": "ann", "key": "k9"}),
        ("k2", 1, {"name": "bob", "key": "k2"}),
    ]


def test_without_id_column_ids_are_line_positions_and_blank_lines_are_skipped(plugin_context: PluginContext) -> None:
    _, rows = read(plugin_context, "x\n1\n\n2\n")
    assert [(r.id, r.data["x"]) for r in rows] == [("1", "1"), ("2", "2")]


def test_a_byte_order_mark_is_not_part_of_the_first_column(plugin_context: PluginContext) -> None:
    columns, rows = read(plugin_context, "\ufeffid,text\n1,héllo\n".encode())
    assert columns == ["id", "text"]
    assert rows[0].data["text"] == "héllo"


def test_quoted_fields_keep_commas_and_newlines(plugin_context: PluginContext) -> None:
    _, rows = read(plugin_context, 'id,text\n1,"a, b\nc"\n')
    assert rows[0].data["text"] == "a, b\nc"


def test_wrong_number_of_fields_names_the_file_and_line(plugin_context: PluginContext) -> None:
    with pytest.raises(
        ElspethError, match=r"^data\.csv line 3: expected 2 fields, found 3; set on_malformed: skip to skip such lines$"
    ):
        read(plugin_context, "id,text\n1,fine\n2,too,many\n")


def test_duplicate_ids_name_the_line_and_the_id(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"data\.csv line 4: duplicate id 'a' in 'id'"):
        read(plugin_context, "id,v\na,1\nb,2\na,3\n", id_column="id")


def test_missing_id_column_lists_the_columns(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"id_column 'key' is not a column of .*data\.csv \(columns: id, v\)"):
        read(plugin_context, "id,v\na,1\n", id_column="key")


def test_missing_file_names_the_path(plugin_context: PluginContext) -> None:
    source = CsvDataSource(CsvDataSource.Options(path="nowhere/missing.csv"))
    with pytest.raises(ElspethError, match=r"file not found: .*nowhere/missing\.csv"):
        run_async(read_table(source, plugin_context))


def test_empty_file_asks_for_a_header(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match=r"data\.csv is empty: a CSV file needs a header line"):
        read(plugin_context, "")


def test_duplicate_column_names_are_refused(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match="duplicate column names in its header: a"):
        read(plugin_context, "a,b,a\n1,2,3\n")


def test_unknown_encoding_is_named(plugin_context: PluginContext) -> None:
    with pytest.raises(ElspethError, match="unknown encoding 'klingon'"):
        read(plugin_context, "a\n1\n", encoding="klingon")


def test_header_only_gives_columns_and_no_rows(plugin_context: PluginContext) -> None:
    columns, rows = read(plugin_context, "a,b\n")
    assert columns == ["a", "b"]
    assert rows == []


def test_relative_paths_resolve_against_the_settings_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "d.csv").write_text("a\n1\n", encoding="utf-8")
    ctx = PluginContext("r", "n", base_dir=tmp_path / "in", output_dir=tmp_path / "out")
    source = CsvDataSource(CsvDataSource.Options(path="d.csv"))
    table, rows = run_async(read_table(source, ctx))
    assert table.source == str((tmp_path / "in" / "d.csv").resolve())
    assert len(rows) == 1
