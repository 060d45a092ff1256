"""``gates:`` through the real CLI: exit 3 with each failed gate and its figures, exit 2 for a bad gate, JUnit XML."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

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


# -- docs/ci-gate.md: its settings and workflow, run as the workflow runs them ---------------------

PAGE = Path(__file__).resolve().parent.parent / "docs" / "ci-gate.md"


def _doc_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"<!-- tested by tests/test_ci_gate.py -->\n```yaml\n(.*?)```", text, re.S)


def test_the_page_has_the_settings_and_the_workflow() -> None:
    settings, workflow = (yaml.safe_load(block) for block in _doc_blocks())
    assert "gates" in settings["orchestrator"]["options"]
    assert "pull_request" in workflow[True], "YAML 1.1 reads the key `on` as true; GitHub reads it as `on`"
    assert workflow["permissions"]["pull-requests"] == "write"


def _steps(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step.get("name", step.get("uses", step.get("run"))): step for step in workflow["jobs"]["gate"]["steps"]}


def test_the_workflow_runs_the_documented_settings_and_posts_what_they_write(
    tmp_path: Path, llm_server: Any, base_env: dict[str, str]
) -> None:
    settings_text, workflow_text = _doc_blocks()
    settings, workflow = yaml.safe_load(settings_text), yaml.safe_load(workflow_text)
    # the documented project, at the paths the workflow names, calling the test server instead of OpenAI
    settings["llm"]["options"]["base_url"] = llm_server.openai_base_url
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval/settings.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    rows = "".join(f"{i},review number {i} of a kettle\n" for i in range(40))
    (tmp_path / "eval/reviews.csv").write_text("id,review\n" + rows, encoding="utf-8")
    steps = _steps(workflow)
    outputs = tmp_path / "github_output"
    env = {
        **base_env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}",
        "GITHUB_OUTPUT": str(outputs),
        "OPENAI_API_KEY": "sk-test",
    }
    run = subprocess.run(
        ["bash", "-e", "-c", steps["Run the experiment"]["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"the step records the exit code rather than failing: {run.stderr}"
    code = int(outputs.read_text(encoding="utf-8").strip().removeprefix("code="))
    assert code in (0, 3), run.stderr
    junit = ET.parse(tmp_path / steps["Gates as a test report"]["with"]["report_paths"]).getroot()
    gates = junit.find("testsuite[@name='gates']")
    assert gates is not None
    assert gates.get("tests") == "3"
    assert (code == 3) == (gates.get("failures") != "0"), "the report is red exactly when the step's code says so"
    for case in gates.findall("testcase"):
        verdict = "FAILED" if case.find("failure") is not None else "passed"
        assert f"gate {verdict}: {case.get('name')}: " in run.stdout
    body = steps["Post the comparison"]["run"].split("--body-file ", 1)[1].strip()
    report = (tmp_path / body).read_text(encoding="utf-8")
    assert "### candidate vs baseline" in report, "the comparison is what the comment posts"
    assert report.index("## Gates") < report.index("## Comparisons with the baseline")
    for case in gates.findall("testcase"):
        verdict = "**FAILED**" if case.find("failure") is not None else "passed"
        assert f"| {verdict} |" in report
    fail_step = steps["Fail the check as elspeth run did"]
    assert fail_step["if"] == "steps.experiment.outputs.code != '0'"
    assert steps["Run the experiment"]["id"] == "experiment"
