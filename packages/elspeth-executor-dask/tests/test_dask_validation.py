"""The validation orchestrator on the cluster: verdicts in input order across partitions, and shipped chunks."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from elspeth import load_registry, load_settings
from elspeth.engine import run_settings


def run(folder: Path, executor: dict[str, Any], encoding: str) -> Any:
    lines = ["id,email,age"] + [f"v{i:03d},user{i % 25}@example.org,{(i * 7) % 130}" for i in range(80)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = {
        "name": "dask-validation",
        "datasource": {"plugin": "csv", "options": {"path": "people.csv", "id_column": "id", "encoding": encoding}},
        "orchestrator": {
            "plugin": "validation",
            "options": {"unique": ["email"], "ranges": {"age": {"min": 0, "max": 120}}},
        },
        "executor": executor,
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv", "failures_path": "rejected.csv"}}],
    }
    (folder / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
    return run_settings(load_settings(folder / "settings.yaml"), load_registry())


def ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [r["row_id"] for r in csv.DictReader(handle)]


def test_unique_holds_across_partitions_and_chunks_of_a_source_read_here(cluster: Any, tmp_path: Path) -> None:
    # encoding auto cannot be split by bytes: the rows are read here and shipped in chunks of 7
    executor = {"plugin": "dask", "options": {"address": cluster.scheduler.address, "partition_rows": 7}}
    result = run(tmp_path, executor, "auto")
    valid = ids(tmp_path / "output/valid.csv")
    # the first of each email is kept, in input order, though its repeats were judged on other workers
    assert valid == [f"v{i:03d}" for i in range(25) if (i * 7) % 130 <= 120]
    assert len(valid) + len(ids(tmp_path / "output/rejected.csv")) == 80
    assert result.metadata.extra["executor"]["partitions_done"] == 12  # 80 rows in chunks of 7


def test_without_an_address_a_local_cluster_is_started_for_the_run(tmp_path: Path) -> None:
    executor = {"plugin": "dask", "options": {"n_workers": 1, "partition_bytes": 256}}
    result = run(tmp_path, executor, "utf-8")
    assert result.metadata.extra["executor"]["workers"] == 1
    assert result.metadata.extra["executor"]["partitions_done"] > 3
    assert ids(tmp_path / "output/valid.csv") == [f"v{i:03d}" for i in range(25) if (i * 7) % 130 <= 120]
