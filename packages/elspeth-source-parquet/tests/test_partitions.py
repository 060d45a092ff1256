"""Partitions by row groups: planned from the footer, read where they run, the same rows as a whole read."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elspeth import ElspethError, Partitioned, PluginContext, load_registry, load_settings, run_settings
from elspeth_parquet.datasource import ParquetDataSource, ParquetOptions
from elspeth_parquet.parts import ParquetPartitions, plan_groups


def local_map(fn: Any, items: Any) -> list[Any]:
    return [fn(item) for item in items]


def context(folder: Path) -> PluginContext:
    return PluginContext(run_id="r", name="t", base_dir=folder, output_dir=folder / "out", logger=logging.getLogger())


def test_small_row_groups_share_a_partition_and_a_big_one_stands_alone() -> None:
    groups = [(10, 100), (10, 100), (10, 100), (50, 900), (0, 10), (10, 100)]
    assert plan_groups(groups, 250) == [[0, 1], [2], [3], [5]]
    assert plan_groups(groups, 10_000) == [[0, 1, 2, 3, 5]]
    assert plan_groups(groups, 1) == [[0], [1], [2], [3], [5]]
    assert plan_groups([], 100) == []


def test_partitions_hold_every_row_as_the_whole_read_gives_it(tmp_path: Path, write: Any) -> None:
    write(tmp_path / "p.parquet", 95, row_group_size=10)
    options = ParquetOptions(path="p.parquet", id_column="id", batch_rows=4)
    source = ParquetDataSource(options)
    whole = [(r.id, r.index, r.data) for r in source.load(context(tmp_path)).rows]
    table = source.open_partitioned(context(tmp_path))
    assert isinstance(table.rows, Partitioned)
    sizes = group_bytes(tmp_path / "p.parquet")
    target = 3 * max(sizes)
    parts = table.rows.partitions(target, local_map)
    assert 1 < len(parts) < len(sizes)  # several small row groups to a partition
    held = [sum(sizes[k] for k in p.row_groups) for p in parts]
    assert all(h <= target for h in held)
    assert all(h + sizes[nxt.row_groups[0]] > target for h, nxt in zip(held, parts[1:], strict=False))
    assert [k for p in parts for k in p.row_groups] == list(range(10))
    assert sum(p.count for p in parts) == 95
    first = parts[0]  # three row groups at least: each holds at most a third of the target
    assert first.label == f"p.parquet row groups 0-{first.row_groups[-1]} (rows 1-{first.count})"
    assert [(r.id, r.index, r.data) for p in parts for r in p.read()] == whole
    assert [(r.id, r.index, r.data) for r in table.rows] == whole  # iterated here: the same rows


def group_bytes(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(k).total_byte_size for k in range(meta.num_row_groups)]


def test_a_single_row_group_partition_is_labelled_by_its_rows(tmp_path: Path, write: Any) -> None:
    write(tmp_path / "p.parquet", 25, row_group_size=10)
    table = ParquetDataSource(ParquetOptions(path="p.parquet")).open_partitioned(context(tmp_path))
    assert isinstance(table.rows, ParquetPartitions)
    parts = table.rows.partitions(1, local_map)
    assert [p.label for p in parts] == [
        "p.parquet row group 0 (rows 1-10)",
        "p.parquet row group 1 (rows 11-20)",
        "p.parquet row group 2 (rows 21-25)",
    ]
    assert [r.id for r in parts[2].read()] == [str(i) for i in range(21, 26)]


def test_a_repeated_id_in_a_partition_is_found_before_the_run(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a", "b", "c", "b"], "v": [1, 2, 3, 4]}), tmp_path / "d.parquet", row_group_size=2)
    table = ParquetDataSource(ParquetOptions(path="d.parquet", id_column="id")).open_partitioned(context(tmp_path))
    assert isinstance(table.rows, ParquetPartitions)
    with pytest.raises(ElspethError, match=r"d.parquet row 4: duplicate id 'b' in 'id' \(first in row 2\)"):
        table.rows.partitions(1 << 20, local_map)


def run(folder: Path, executor: dict[str, Any] | None) -> Any:
    settings: dict[str, Any] = {
        "name": "parquet-validation",
        "datasource": {"plugin": "parquet", "options": {"path": "people.parquet", "id_column": "id"}},
        "orchestrator": {
            "plugin": "validation",
            "options": {"unique": ["email"], "ranges": {"age": {"min": 0, "max": 120}}},
        },
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "rejected.csv"}}],
    }
    if executor is not None:
        settings["executor"] = executor
    (folder / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
    return run_settings(load_settings(folder / "settings.yaml"), load_registry())


def table_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_on_the_cluster_gives_what_the_local_run_gives(cluster: Any, tmp_path: Path, write: Any) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    for folder in (local, remote):
        folder.mkdir()
        write(folder / "people.parquet", 400, row_group_size=30)
    run(local, None)
    sizes = group_bytes(remote / "people.parquet")
    target = 2 * max(sizes)
    executor = {"plugin": "dask", "options": {"address": cluster.scheduler.address, "partition_bytes": target}}
    result = run(remote, executor)
    planned = len(plan_groups([(1, size) for size in sizes], target))
    assert 1 < planned < len(sizes)
    assert result.metadata.extra["executor"]["partitions_done"] == planned
    for name in ("valid.csv", "rejected.csv"):
        assert table_of(remote / "output" / name) == table_of(local / "output" / name)
    valid = [r["row_id"] for r in table_of(remote / "output/valid.csv")]
    assert valid == [f"p{i:05d}" for i in range(25) if (i * 7) % 130 <= 120]  # first of each email, across partitions


def test_a_file_missing_on_the_workers_fails_naming_the_partition(cluster: Any, tmp_path: Path, write: Any) -> None:
    write(tmp_path / "people.parquet", 40, row_group_size=10)
    source = ParquetDataSource(ParquetOptions(path="people.parquet"))
    table = source.open_partitioned(context(tmp_path))
    assert isinstance(table.rows, ParquetPartitions)
    parts = table.rows.partitions(1, local_map)
    (tmp_path / "people.parquet").unlink()
    with pytest.raises(ElspethError, match=r"file not found: .*people.parquet"):
        cluster.submit(lambda part: list(part.read()), parts[1], pure=False).result()
