"""The excel sink as a user meets it: installed, listed, and configured in a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

import elspeth_sink_excel
from elspeth import load_registry


def elspeth(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    return subprocess.run(
        [sys.executable, "-m", "elspeth", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_installed_plugin_is_discovered_with_its_distribution() -> None:
    registry = load_registry(environ={})
    info = registry.get("sink", "excel")
    assert info.status == "ok", info.error
    assert info.distribution == "elspeth-sink-excel"
    assert info.version == elspeth_sink_excel.__version__


def test_listing_plugins_does_not_import_openpyxl() -> None:
    code = (
        "import sys\n"
        "from elspeth import load_registry\n"
        "registry = load_registry(environ={})\n"
        "assert registry.get('sink', 'excel').status == 'ok'\n"
        "print('openpyxl' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False", "the entry point must not import openpyxl"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    pytest.importorskip("elspeth_experiment", reason="the example project needs elspeth-orchestrator-experiment")
    done = elspeth("init", str(tmp_path / "project"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "project"


def add_excel_sink(settings: Path, options: str) -> None:
    text = settings.read_text(encoding="utf-8")
    assert "\nsinks:\n" in text
    settings.write_text(
        text.replace("\nsinks:\n", f"\nsinks:\n  - plugin: excel\n    options: {options}\n", 1), encoding="utf-8"
    )


def test_the_example_experiment_writes_a_complete_workbook(example: Path) -> None:
    add_excel_sink(example / "settings.yaml", "{path: report/results.xlsx}")
    done = elspeth("run", "settings.yaml", cwd=example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report/results.xlsx" in done.stdout, "the CLI lists the workbook among the files written"
    assert "sanitize_formulas" not in done.stderr

    book = load_workbook(example / "output" / "report" / "results.xlsx")
    assert book.sheetnames == ["Results", "Failures", "Aggregates", "Comparisons", "Manifest"]
    header, *rows = list(book["Results"].iter_rows(values_only=True))
    assert header[:2] == ("Row ID", "Experiment")
    assert {"product", "review", "Response", "Scores (default)"} <= set(header)
    assert len(rows) == 60, "20 rows times 3 experiments"
    experiments = {row[1] for row in rows}
    assert experiments == {"baseline", "strict-analyst", "other-seed"}
    scores = [row[header.index("Scores (default)")] for row in rows]
    assert all(isinstance(s, float) for s in scores), "scores stay numbers"

    aggregates = {(r[0], r[2], r[3]): r[4] for r in book["Aggregates"].iter_rows(min_row=2, values_only=True)}
    for name in experiments:
        assert isinstance(aggregates[(name, "score_stats", "overall.mean")], float)
        assert aggregates[(name, "run", "succeeded")] == 20

    manifest = {r[0]: r[1:] for r in book["Manifest"].iter_rows(min_row=2, values_only=True)}
    assert manifest["Name"][0] == "review-quality"
    assert manifest["Records"][0] == 60
    assert manifest["Formula sanitisation"][0] == "on"
    plugins = {(r[1], r[2]) for r in book["Manifest"].iter_rows(min_row=2, values_only=True) if r[2]}
    assert ("excel", "elspeth-sink-excel") in plugins
    assert ("experiment", "elspeth-orchestrator-experiment") in plugins


def test_turning_sanitisation_off_in_settings_warns_on_the_terminal(example: Path) -> None:
    add_excel_sink(example / "settings.yaml", "{sanitize_formulas: false}")
    done = elspeth("run", "settings.yaml", cwd=example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sanitize_formulas: false" in done.stderr
    assert "results.xlsx" in done.stderr


def test_a_bad_option_fails_validation_naming_the_setting(example: Path) -> None:
    add_excel_sink(example / "settings.yaml", "{path: results.xls}")
    done = elspeth("validate", "settings.yaml", cwd=example)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "sinks[0].options.path" in message
    assert ".xlsx" in message
