"""`elspeth runs show`, `elspeth cache stats|clear`, and what a run's metadata says about its input and retrieval."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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


BUDGETED = """
name: budgeted
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock, options: {seed: 3}}
prompts: {user: "Rate {{ text }}"}
concurrency: 2
cost_tracker: {plugin: price_table, options: {prices: {'*': {input: 100000, output: 100000}}, budget: 10}}
STORE
orchestrator: {plugin: experiment, options: {row_plugins: [score_extractor]EARLY}}
sinks: [{plugin: jsonl}, {plugin: json, options: {path: summary.json}}]
"""


def budgeted(tmp_path: Path, *, rows: int = 40, store: str = "", early: str = "") -> Path:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i},review number {i}\n" for i in range(rows)))
    path = tmp_path / "settings.yaml"
    path.write_text(BUDGETED.replace("STORE", store).replace("EARLY", early))
    return path


def show(tmp_path: Path, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = elspeth(tmp_path, "runs", "show", run_id, *args)
    assert done.returncode == 0, done.stderr
    return done


def test_a_resume_with_a_raised_budget_counts_every_attempts_cost_and_time(tmp_path):
    settings = budgeted(tmp_path)
    first = elspeth(tmp_path, "run", str(settings), "--no-progress", "--force")
    assert first.returncode == 0, first.stderr
    (listed,) = json.loads(elspeth(tmp_path, "runs", "list", "-s", str(settings), "--json").stdout)
    run_id = listed["run_id"]
    assert listed["status"] == "stopped"
    assert f"resume with: elspeth run {settings} --resume {run_id}" in first.stdout  # a budget stop goes on
    before = json.loads(show(tmp_path, run_id, "-s", str(settings), "--json").stdout)
    assert 10 <= before["totals"]["cost"] < 20
    assert 0 < before["done"] < 40

    same = elspeth(tmp_path, "run", str(settings), "--resume", run_id, "--no-progress")
    assert same.returncode == 2
    assert "earlier attempts spent its budget" in same.stderr  # the budget is the run's, not each attempt's

    settings.write_text(
        settings.read_text().replace("budget: 10", "budget: 1000").replace("concurrency: 2", "concurrency: 4")
    )
    resumed = elspeth(tmp_path, "run", str(settings), "--resume", run_id, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "resume with" not in resumed.stdout  # completed: nothing left to resume

    records = [json.loads(line) for line in (tmp_path / "output" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["row_id"] for r in records) == sorted(f"r{i}" for i in range(40))
    spent = sum(r["metrics"]["cost"] for r in records)  # every row's cost, whichever attempt paid it
    tokens = sum(r["metrics"]["prompt_tokens"] + r["metrics"]["completion_tokens"] for r in records)
    after = json.loads(show(tmp_path, run_id, "-s", str(settings), "--json").stdout)
    assert after["attempts"] == 2
    assert after["totals"]["cost"] == pytest.approx(spent)
    assert after["totals"]["cost"] > before["totals"]["cost"]
    assert after["totals"]["prompt_tokens"] + after["totals"]["completion_tokens"] == tokens
    assert after["totals"]["llm_calls"] == 40
    assert after["metadata"]["cost"]["total_cost"] == pytest.approx(spent)
    attempt = after["metadata"]["attempt_duration_s"]
    assert after["metadata"]["duration_s"] == pytest.approx(before["metadata"]["duration_s"] + attempt, abs=1e-5)
    assert after["totals"]["duration_s"] == pytest.approx(after["metadata"]["duration_s"], abs=1e-5)
    summary = json.loads((tmp_path / "output" / "summary.json").read_text())["metadata"]
    assert summary["cost"]["total_cost"] == pytest.approx(spent)  # the sinks see the whole run too
    assert summary["totals"]["llm_calls"] == 40

    shown = show(tmp_path, run_id, "-s", str(settings)).stdout
    assert f"cost: {spent:.4f} USD" in shown
    assert f"tokens: {tokens:,}" in shown
    assert "resume:" not in shown


def test_an_early_stop_prints_no_resume_hint(tmp_path):
    threshold = "{metric: scores.default, threshold: 2, statistic: latest, min_rows: 3}"
    early = f", early_stop: [{{plugin: threshold, options: {threshold}}}]"
    settings = budgeted(tmp_path, early=early)
    settings.write_text(settings.read_text().replace("budget: 10", "budget: 1000"))
    done = elspeth(tmp_path, "run", str(settings), "--no-progress", "--force")
    assert done.returncode == 0, done.stderr
    (listed,) = json.loads(elspeth(tmp_path, "runs", "list", "-s", str(settings), "--json").stdout)
    assert listed["status"] == "stopped"
    assert listed["metadata"]["early_stop"]["default"]["plugin"] == "threshold"
    assert "resume with" not in done.stdout  # resuming would take over the finished rows and stop again
    assert "resume:" not in show(tmp_path, listed["run_id"], "-s", str(settings)).stdout


def test_the_store_path_setting_is_used_by_run_runs_and_resume(tmp_path):
    settings = budgeted(tmp_path, rows=20, store="store: {path: state/history.sqlite}")
    first = elspeth(tmp_path, "run", str(settings), "--no-progress", "--force")
    assert first.returncode == 0, first.stderr
    store = tmp_path / "state" / "history.sqlite"
    assert store.is_file()
    assert not (tmp_path / "output" / "elspeth-runs.sqlite").exists()
    by_settings = json.loads(elspeth(tmp_path, "runs", "list", "-s", str(settings), "--json").stdout)
    by_file = json.loads(elspeth(tmp_path, "runs", "list", "--store", str(store), "--json").stdout)
    assert [r["run_id"] for r in by_settings] == [r["run_id"] for r in by_file]
    (run,) = by_file
    assert run["status"] == "stopped"
    default = elspeth(tmp_path, "runs", "list")  # the default place has no store
    assert default.returncode == 2
    assert "no run store at output/elspeth-runs.sqlite" in default.stderr

    settings.write_text(settings.read_text().replace("budget: 10", "budget: 1000"))
    resumed = elspeth(tmp_path, "run", str(settings), "--resume", run["run_id"], "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    (run,) = json.loads(elspeth(tmp_path, "runs", "list", "--store", str(store), "--json").stdout)
    assert (run["status"], run["done"], run["pending"], run["attempts"]) == ("completed", 20, 0, 2)
    assert not (tmp_path / "output" / "elspeth-runs.sqlite").exists()


def corrupt_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` (a data page, never the header page) with garbage."""
    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    finally:
        conn.close()
    assert root > 1
    assert not Path(f"{path}-wal").exists()  # every write is in the file itself
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)


def test_a_damaged_store_page_is_an_error_naming_the_file(tmp_path):
    settings = project(tmp_path)
    assert elspeth(tmp_path, "run", str(settings), "--no-progress").returncode == 0
    run_id = json.loads(elspeth(tmp_path, "runs", "list", "-s", str(settings), "--json").stdout)[0]["run_id"]
    store = (tmp_path / "output" / "elspeth-runs.sqlite").resolve()
    corrupt_table(store, "runs")
    for args in (
        ("runs", "list", "-s", str(settings)),
        ("runs", "show", run_id, "-s", str(settings)),
        ("run", str(settings), "--resume", run_id, "--no-progress"),
        ("run", str(settings), "--no-progress"),
    ):
        done = elspeth(tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert str(store) in done.stderr, args
        assert "malformed" in done.stderr
        assert "move it aside" in done.stderr
        assert "Traceback" not in done.stderr
        assert "unexpected" not in done.stderr


def test_the_cache_commands_refuse_a_foreign_database_and_a_run_store_without_changing_them(tmp_path):
    settings = project(tmp_path)
    assert elspeth(tmp_path, "run", str(settings), "--no-progress").returncode == 0
    foreign = tmp_path / "invoices.db"
    conn = sqlite3.connect(foreign)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()
    store = tmp_path / "output" / "elspeth-runs.sqlite"
    for path, kind in ((foreign, "an SQLite database with tables invoices"), (store, "an Elspeth run store")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        for action in ("stats", "clear"):
            done = elspeth(tmp_path, "cache", action, "--path", str(path))
            assert done.returncode == 2, done.stderr
            assert f"{path} is {kind}" in done.stderr
            assert "not an Elspeth response cache" in done.stderr
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert not Path(f"{path}-wal").exists()
