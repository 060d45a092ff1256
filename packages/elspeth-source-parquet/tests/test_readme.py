"""The README's settings file, run as written over a Parquet file: locally, then on a LocalCluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from elspeth import load_registry, load_settings, run_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def settings_block() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- tested by packages/elspeth-source-parquet/tests/test_readme.py -->\n```yaml\n(.*?)```", text, re.S
    )
    assert found, "README.md lost its tested settings block"
    return found.group(1)


def test_the_readme_example_runs_locally_and_on_a_cluster(cluster: Any, tmp_path: Path, write: Any) -> None:
    outputs = []
    for executor in (None, {"plugin": "dask", "options": {"address": cluster.scheduler.address, "partition_bytes": 1}}):
        folder = tmp_path / ("local" if executor is None else "dask")
        folder.mkdir()
        write(folder / "people.parquet", 60, row_group_size=20)
        settings = yaml.safe_load(settings_block())
        if executor is not None:
            settings["executor"] = executor
        (folder / "settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        result = run_settings(load_settings(folder / "settings.yaml"), load_registry())
        assert result.failures  # out-of-range ages and repeated emails are rejected
        outputs.append([(folder / "output" / n).read_text(encoding="utf-8") for n in ("valid.csv", "rejected.csv")])
    assert outputs[0] == outputs[1]
    assert result.metadata.extra["executor"]["partitions_done"] == 3  # one per row group
