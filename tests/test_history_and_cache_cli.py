"""`elspeth runs show`, `elspeth cache stats|clear`, and what a run's metadata says about its input and retrieval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = """
name: history
datasource: {plugin: csv, options: {path: data.csv, id_column: id, on_malformed: skip}}
llm: {plugin: mock, options: {seed: 3}}
prompts: {user: "Rate {{ text }}"}
utilities: [{plugin: response_cache}]
orchestrator: {plugin: experiment, options: {row_plugins: [score_extractor]}}
sinks: [{plugin: json, options: {path: summary.json}}]
"""

DATA = "id,text\nr1,good\nr2,too,many,fields\nr3,fine\nr4,ok,extra field\nr5,last\n"


def elspeth(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    return subprocess.run(
        [sys.executable, "-m", "elspeth", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def project(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text(DATA)
    (tmp_path / "settings.yaml").write_text(SETTINGS)
    return tmp_path / "settings.yaml"


def test_runs_show_and_the_cache_commands(tmp_path):
    settings = project(tmp_path)
    first = elspeth(tmp_path, "run", str(settings), "--no-progress")
    assert first.returncode == 0, first.stderr
    run_id = json.loads(elspeth(tmp_path, "runs", "list", "-s", str(settings), "--json").stdout)[0]["run_id"]

    shown = elspeth(tmp_path, "runs", "show", run_id, "-s", str(settings))
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id} (history): completed" in shown.stdout
    assert "rows: 3 done, 0 failed, 0 pending" in shown.stdout
    assert "llm_client mock: elspeth-core" in shown.stdout
    as_json = json.loads(elspeth(tmp_path, "runs", "show", run_id, "-s", str(settings), "--json").stdout)
    assert as_json["settings"]["name"] == "history"

    missing = elspeth(tmp_path, "runs", "show", "nope", "-s", str(settings))
    assert missing.returncode == 2
    assert "no run 'nope'" in missing.stderr
    assert run_id in missing.stderr

    stats = elspeth(tmp_path, "cache", "stats", "-s", str(settings))
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout.startswith("3 cached answers")
    cleared = elspeth(tmp_path, "cache", "clear", "-s", str(settings))
    assert cleared.stdout.startswith("removed 3 cached answers")
    assert elspeth(tmp_path, "cache", "stats", "-s", str(settings)).stdout.startswith("0 cached answers")
    unnamed = elspeth(tmp_path, "cache", "stats")
    assert unnamed.returncode == 2
    assert "name the cache" in unnamed.stderr


def test_skipped_input_lines_reach_the_run_metadata(tmp_path):
    settings = project(tmp_path)
    done = elspeth(tmp_path, "run", str(settings), "--no-progress")
    assert done.returncode == 0, done.stderr
    metadata = json.loads((tmp_path / "output" / "summary.json").read_text())["metadata"]
    csv_summary = metadata["datasource"]["csv"]
    assert csv_summary["skipped_count"] == 2
    assert [s["line"] for s in csv_summary["skipped"]] == [3, 5]
    assert metadata["utility"]["response_cache"] == {"hits": 0, "misses": 3}
