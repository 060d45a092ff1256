"""The worked example of docs/distributed.md, run as the page shows it: a LocalCluster started for the run."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from elspeth import load_registry, load_settings
from elspeth.engine import run_settings

PAGE = Path(__file__).resolve().parents[3] / "docs" / "distributed.md"


def example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- tested by packages/elspeth-executor-dask/tests/test_docs_example.py -->\n```yaml\n(.*?)```", text, re.S
    )
    assert found, "docs/distributed.md lost its worked example"
    return found.group(1)


def test_the_worked_example_runs_on_a_local_cluster(tmp_path: Path) -> None:
    rows = ["id,email,age"] + [f"p{i:04d},person{i % 150}@example.org,{i % 140}" for i in range(400)]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(example(), encoding="utf-8")
    result = run_settings(load_settings(tmp_path / "settings.yaml"), load_registry())
    assert result.metadata.extra["executor"]["workers"] == 2
    assert result.metadata.extra["executor"]["partitions_done"] >= 3
    with (tmp_path / "output/valid.csv").open(encoding="utf-8", newline="") as handle:
        valid = [r["row_id"] for r in csv.DictReader(handle)]
    assert valid == [f"p{i:04d}" for i in range(150) if i % 140 <= 120]
