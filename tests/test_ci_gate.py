"""``gates:`` through the real CLI: exit 3 with each failed gate and its figures, exit 2 for a bad gate, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

Cli = Any

GATES = """\
    gates:
      - {gate: mean, at_least: 0.0}
      - {gate: pass_rate, at_least: 0.99, experiments: [strict-analyst]}
      - {gate: cost, at_most: 1000}
"""
PRICES = """\
cost_tracker:
  plugin: price_table
  options:
    prices: {"*": {input: 1.0, output: 2.0}}
"""


def _with_gates(settings: Path, gates: str) -> None:
    text = settings.read_text(encoding="utf-8")
    text = text.replace("    experiments:\n", gates + "    experiments:\n", 1)
    text = text.replace("sinks:\n", f"{PRICES}\nsinks:\n  - plugin: junit\n", 1)
    settings.write_text(text, encoding="utf-8")


def test_a_failed_gate_exits_3_naming_it_with_its_figures_and_junit_says_the_same(cli: Cli, quickstart: Path) -> None:
    _with_gates(quickstart, GATES)
    done = cli("run", "settings.yaml", "--no-progress", cwd=quickstart.parent)
    assert done.returncode == 3, done.stderr
    assert "gate passed: mean >= 0: baseline: mean 0." in done.stdout
    assert "gate FAILED: pass_rate >= 0.99 (strict-analyst): strict-analyst: pass_rate 0." in done.stdout
    assert "gate passed: cost <= 1000: cost 0.0" in done.stdout
    assert "error: gate failed: pass_rate >= 0.99 (strict-analyst): strict-analyst: pass_rate 0." in done.stderr
    assert "error: 1 of 3 gate(s) failed" in done.stderr
    root = ET.parse(quickstart.parent / "output/junit.xml").getroot()
    gates = root.find("testsuite[@name='gates']")
    assert gates is not None
    assert (gates.get("tests"), gates.get("failures")) == ("3", "1")
    failed = gates.find("testcase[@name='pass_rate >= 0.99 (strict-analyst)']/failure")
    assert failed is not None
    assert (failed.get("message") or "").startswith("strict-analyst: pass_rate 0.")


def test_gates_that_all_pass_exit_0(cli: Cli, quickstart: Path) -> None:
    _with_gates(quickstart, "    gates:\n      - {gate: pass_rate, at_least: 0.0}\n")
    done = cli("run", "settings.yaml", "--no-progress", cwd=quickstart.parent)
    assert done.returncode == 0, done.stderr
    assert "gate passed: pass_rate >= 0" in done.stdout
    assert "gate failed" not in done.stderr


def test_a_bad_gate_exits_2_naming_its_field_and_line(cli: Cli, quickstart: Path) -> None:
    original = quickstart.read_text(encoding="utf-8")
    _with_gates(quickstart, "    gates:\n      - {gate: pass_rate, at_least: 1.5}\n      - {gate: no_regression}\n")
    for command in ("validate", "run"):
        done = cli(command, "settings.yaml", cwd=quickstart.parent)
        assert done.returncode == 2, done.stderr
        field = "orchestrator.options.gates[0].pass_rate.at_least"
        assert f"{field}: input should be less than or equal to 1" in done.stderr
        line = quickstart.read_text(encoding="utf-8").splitlines().index("      - {gate: pass_rate, at_least: 1.5}") + 1
        assert f"(settings.yaml:{line})" in done.stderr
        assert not (quickstart.parent / "output/junit.xml").exists()
    quickstart.write_text(original, encoding="utf-8")
    _with_gates(quickstart, "    gates:\n      - {gate: no_regression}\n")
    done = cli("validate", "settings.yaml", cwd=quickstart.parent)
    assert done.returncode == 2
    assert "orchestrator.options.gates[0].comparison: the comparison 'score_significance' is not in" in done.stderr
