"""Reading a file locally: values keep their types, columns are chosen and ordered, bad input is named."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elspeth import PluginContext
from elspeth_parquet.datasource import ParquetDataSource, ParquetError, ParquetOptions
from elspeth_testing import run_cli


def context(folder: Path) -> PluginContext:
    return PluginContext(run_id="r", name="t", base_dir=folder, output_dir=folder / "out", logger=logging.getLogger())


def rows(folder: Path, **options: Any) -> list[Any]:
    table = ParquetDataSource(ParquetOptions(**options)).load(context(folder))
    return list(table.rows)


def test_values_keep_their_types_and_rows_cross_row_groups_and_batches(tmp_path: Path, write: Any) -> None:
    write(tmp_path / "p.parquet", 23, row_group_size=5)
    got = rows(tmp_path, path="p.parquet", batch_rows=3)
    assert [r.id for r in got] == [str(i + 1) for i in range(23)]
    assert [r.index for r in got] == list(range(23))
    assert got[12].data == {
        "id": "p00012",
        "email": "user12@example.org",
        "age": 84,
        "joined": dt.date(2025, 1, 13),
        "score": 3.0,
    }
    assert got[11].data["score"] is None


def test_columns_are_read_in_the_order_given_and_the_id_column_need_not_be_among_them(
    tmp_path: Path, write: Any
) -> None:
    write(tmp_path / "p.parquet", 6, row_group_size=4)
    source = ParquetDataSource(ParquetOptions(path="p.parquet", columns=["age", "email"], id_column="id"))
    table = source.load(context(tmp_path))
    assert table.columns == ["age", "email"]
    got = list(table.rows)
    assert [r.id for r in got] == [f"p{i:05d}" for i in range(6)]
    assert list(got[1].data) == ["age", "email"]
    assert len(table.rows) == 6  # type: ignore[arg-type]
    assert source.summary() == {"rows": 6, "row_groups": 2}


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ParquetError, match=rf"file not found: {tmp_path}/absent.parquet"):
        rows(tmp_path, path="absent.parquet")


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    (tmp_path / "p.parquet").write_text("id,text\n1,hello\n", encoding="utf-8")
    with pytest.raises(ParquetError, match=rf"{tmp_path}/p.parquet is not a readable Parquet file"):
        rows(tmp_path, path="p.parquet")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    with pytest.raises(ParquetError, match="is not a file"):
        rows(tmp_path, path="parts")


def test_a_column_the_file_lacks_is_named_with_the_field(tmp_path: Path, write: Any) -> None:
    write(tmp_path / "p.parquet", 3, row_group_size=3)
    with pytest.raises(ParquetError, match=r"columns: 'emial' not in .*p.parquet \(its columns: id, email, age"):
        rows(tmp_path, path="p.parquet", columns=["id", "emial"])
    with pytest.raises(ParquetError, match=r"id_column 'key' is not a column of .*p.parquet"):
        rows(tmp_path, path="p.parquet", id_column="key")
    with pytest.raises(ParquetError, match=r"columns: 'id' listed more than once"):
        rows(tmp_path, path="p.parquet", columns=["id", "age", "id"])


def test_a_repeated_or_null_id_stops_the_load_naming_the_rows(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a", "b", "c", "b"], "v": [1, 2, 3, 4]}), tmp_path / "d.parquet", row_group_size=2)
    with pytest.raises(ParquetError, match=r"d.parquet row 4: duplicate id 'b' in 'id' \(first in row 2\)"):
        ParquetDataSource(ParquetOptions(path="d.parquet", id_column="id")).load(context(tmp_path))
    pq.write_table(pa.table({"id": [1, None], "v": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(ParquetError, match=r"n.parquet row 2: empty id in 'id'"):
        ParquetDataSource(ParquetOptions(path="n.parquet", id_column="id")).load(context(tmp_path))


SETTINGS = """\
datasource: {{plugin: parquet, options: {{path: {path}, columns: [id, {column}]}}}}
orchestrator: {{plugin: validation, options: {{unique: [id]}}}}
sinks: [{{plugin: csv, options: {{path: out.csv}}}}]
"""


@pytest.mark.parametrize(
    ("path", "column", "expected"),
    [
        ("absent.parquet", "email", "file not found"),
        ("text.parquet", "email", "is not a readable Parquet file"),
        ("p.parquet", "emial", "columns: 'emial' not in"),
    ],
)
def test_the_cli_exits_2_naming_the_datasource_and_file(
    tmp_path: Path, write: Any, path: str, column: str, expected: str
) -> None:
    write(tmp_path / "p.parquet", 3, row_group_size=3)
    (tmp_path / "text.parquet").write_text("not parquet\n", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(SETTINGS.format(path=path, column=column), encoding="utf-8")
    for command in ("validate", "run"):
        done = run_cli(command, "settings.yaml", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "datasource 'parquet'" in done.stderr, done.stderr
        assert expected in done.stderr, done.stderr
        assert path in done.stderr
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").rglob("out.csv"))
