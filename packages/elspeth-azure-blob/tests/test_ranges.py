"""A CSV blob in byte-range partitions (ranged GETs against Azurite): the rows a whole read gives, here and on dask."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elspeth import CsvPartitions, ElspethError, PluginContext, load_registry, load_settings, run_settings
from elspeth_azure_blob import AzureBlobDataSource, CsvBlobDataSource
from elspeth_testing.services import dask_cluster

HERE = [lambda fn, items: [fn(item) for item in items]][0]
ENV = "TEST_AZURITE_CONNECTION"

# quoted fields holding newlines (LF and CRLF), doubled quotes and commas; emails repeat every 9 rows
PEOPLE = "id,email,age,note\r\n" + "".join(
    f'p{i:03d},user{i % 9}@example.org,{(i * 37) % 140},"line one\nline ""two"", {i}\r\nthree"\r\n'
    if i % 4 == 0
    else f"p{i:03d},user{i % 9}@example.org,{(i * 37) % 140},plain {i}\r\n"
    for i in range(120)
)


def put(service: Any, container: str, blob: str, data: str) -> None:
    service.get_blob_client(container, blob).upload_blob(data.encode("utf-8"), overwrite=True)


def context(folder: Path) -> PluginContext:
    return PluginContext(run_id="r", name="t", base_dir=folder, output_dir=folder / "out", logger=logging.getLogger())


def options(container: str, **extra: Any) -> dict[str, Any]:
    return {"container": container, "blob": "in/people.csv", "connection_string_env": ENV, **extra}


def triples(rows: Any) -> list[tuple[str, int, dict[str, Any]]]:
    return [(r.id, r.index, dict(r.data)) for r in rows]


@pytest.mark.parametrize("size", [1, 97, 1000, 1 << 20])
def test_partitions_by_ranges_give_the_rows_of_a_whole_read(
    service: Any, container: str, azure_env: dict[str, str], tmp_path: Path, size: int
) -> None:
    put(service, container, "in/people.csv", PEOPLE)
    source = CsvBlobDataSource(CsvBlobDataSource.Options(**options(container, encoding="utf-8")))
    whole = triples(source.load(context(tmp_path)).rows)
    table = source.open_partitioned(context(tmp_path))
    assert table is not None
    assert isinstance(table.rows, CsvPartitions)
    assert table.columns == ["id", "email", "age", "note"]
    parts = table.rows.partitions(size, HERE)
    assert (len(parts) > 1) == (size < len(PEOPLE))
    assert [r for p in parts for r in triples(p.read())] == whole
    assert len(whole) == 120
    assert parts[0].label.startswith("people.csv from line 2 (bytes ")


def test_a_blob_replaced_after_planning_is_an_error_naming_it(
    service: Any, container: str, azure_env: dict[str, str], tmp_path: Path
) -> None:
    put(service, container, "in/people.csv", PEOPLE)
    source = AzureBlobDataSource(AzureBlobDataSource.Options(**options(container, encoding="utf-8")))
    table = source.open_partitioned(context(tmp_path))
    assert table is not None
    assert isinstance(table.rows, CsvPartitions)
    parts = table.rows.partitions(500, HERE)
    put(service, container, "in/people.csv", PEOPLE.replace("plain", "other"))
    with pytest.raises(ElspethError, match=r"blob 'in/people.csv' in container"):
        list(parts[1].read())


def test_a_bad_value_in_a_partition_names_the_blob_and_its_line(
    service: Any, container: str, azure_env: dict[str, str], tmp_path: Path
) -> None:
    put(service, container, "in/people.csv", PEOPLE.replace("p101,user2@example.org,97", "p101,user2@example.org,x"))
    source = CsvBlobDataSource(CsvBlobDataSource.Options(**options(container, types={"age": "int"})))
    table = source.open_partitioned(context(tmp_path))
    assert table is not None
    assert isinstance(table.rows, CsvPartitions)
    with pytest.raises(ElspethError, match=r"blob 'in/people.csv' in container '\w+' line \d+, column 'age': 'x'"):
        table.rows.partitions(300, HERE)


def test_what_cannot_be_split_is_loaded_here(
    service: Any, container: str, azure_env: dict[str, str], tmp_path: Path
) -> None:
    put(service, container, "in/people.csv", PEOPLE)
    put(service, container, "in/people.jsonl", '{"id": "a"}\n')
    auto = CsvBlobDataSource(CsvBlobDataSource.Options(**options(container, encoding="auto")))
    assert auto.open_partitioned(context(tmp_path)) is None
    jsonl = AzureBlobDataSource(AzureBlobDataSource.Options(**options(container, blob="in/people.jsonl")))
    assert jsonl.open_partitioned(context(tmp_path)) is None


@pytest.fixture(scope="module")
def cluster(azurite: Any) -> Iterator[Any]:
    """2 single-threaded workers that find the connection string in their own environment, as real ones would."""
    with dask_cluster(env={ENV: azurite.connection_string, "NO_PROXY": "127.0.0.1,localhost"}) as client:
        yield client


def run(folder: Path, container: str, executor: dict[str, Any] | None) -> Any:
    settings: dict[str, Any] = {
        "name": "blob-ranges",
        "datasource": {"plugin": "csv_blob", "options": options(container, id_column="id", encoding="utf-8")},
        "orchestrator": {
            "plugin": "validation",
            "options": {"unique": ["email"], "ranges": {"age": {"min": 0, "max": 120}}},
        },
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "rejected.csv"}}],
    }
    if executor is not None:
        settings["executor"] = executor
    folder.mkdir()
    (folder / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
    return run_settings(load_settings(folder / "settings.yaml"), load_registry())


def table_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_on_the_cluster_reads_ranges_and_gives_the_local_runs_rows(
    cluster: Any, service: Any, container: str, azure_env: dict[str, str], tmp_path: Path
) -> None:
    put(service, container, "in/people.csv", PEOPLE)
    run(tmp_path / "local", container, None)
    executor = {"plugin": "dask", "options": {"address": cluster.scheduler.address, "partition_bytes": 700}}
    result = run(tmp_path / "dask", container, executor)
    assert result.metadata.extra["executor"]["partitions_done"] > 5
    for name in ("valid.csv", "rejected.csv"):
        assert table_of(tmp_path / "dask/output" / name) == table_of(tmp_path / "local/output" / name)
    valid = table_of(tmp_path / "dask/output/valid.csv")
    assert [r["row_id"] for r in valid] == [f"p{i:03d}" for i in range(9) if (i * 37) % 140 <= 120]
