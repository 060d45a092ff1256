"""The validation orchestrator as a user meets it: installed, listed, and run with ``elspeth run``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import elspeth_validation
from elspeth_testing.plugin import ElspethCli, WriteSettings

SETTINGS = """\
name: people-check
datasource:
  plugin: csv
  options: {path: people.csv}
orchestrator:
  plugin: validation
  options:
    required: [id, name, email]
    patterns: {email: '[^@\\s]+@[^@\\s]+'}
    ranges:
      age: {min: 18, max: 130}
    allowed: {country: [GB, FR]}
    unique: [id]
    rejects_path: rejects.csv
sinks:
  - plugin: csv
    options: {path: valid.csv}
"""


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_plugin_is_installed_and_listed(elspeth_cli: ElspethCli) -> None:
    done = elspeth_cli("plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = [e for e in json.loads(done.stdout) if e["domain"] == "orchestrator" and e["name"] == "validation"]
    assert entry["status"] == "ok", entry["error"]
    assert entry["distribution"] == "elspeth-orchestrator-validation"
    assert entry["version"] == elspeth_validation.__version__


def test_elspeth_run_without_an_llm_writes_valid_rows_and_rejects(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, people: str, tmp_path: Path
) -> None:
    write_settings(SETTINGS, {"people.csv": people})
    done = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "validation: 2 valid, 6 rejected (allowed 1, pattern 1, range 2, required 1, unique 1)" in done.stdout
    assert "output/rejects.csv" in done.stdout
    assert [r["name"] for r in read_csv(tmp_path / "output/valid.csv")] == ["ann", "bad"]
    rejects = read_csv(tmp_path / "output/rejects.csv")
    assert [(r["row_id"], r["rule"]) for r in rejects] == [
        ("2", "pattern, range"),
        ("3", "allowed"),
        ("4", "range"),
        ("5", "unique"),
        ("6", "required, pattern, range"),
        ("8", "range"),
    ]
    assert rejects[2]["reason"] == "'age' value '290' is outside [18, 130]"
    assert not [p.name for p in (tmp_path / "output").iterdir() if p.name.startswith(".")]
    strict = elspeth_cli("run", "settings.yaml", "--no-progress", "--strict")
    assert strict.returncode == 1
    assert "6 row(s) failed" in strict.stderr


def test_a_rule_on_an_unknown_column_stops_validate_and_run(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, people: str, tmp_path: Path
) -> None:
    text = SETTINGS.replace("      age: {min: 18, max: 130}", "      agee: {min: 18, max: 130}")
    write_settings(text, {"people.csv": people})
    line = text.splitlines().index("      agee: {min: 18, max: 130}") + 1
    for command in ("validate", "run"):
        done = elspeth_cli(command, "settings.yaml")
        assert done.returncode == 2, done.stdout
        assert (
            "orchestrator.options.ranges.agee: column 'agee' is not in the datasource "
            f"(its columns: id, name, email, age, country); did you mean 'age'? (settings.yaml:{line})"
        ) in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "output").exists()


def test_every_row_rejected_is_a_finished_run_not_a_failed_one(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, tmp_path: Path
) -> None:
    write_settings(SETTINGS, {"people.csv": "id,name,email,age,country\n1,ann,no-at-sign,20,GB\n2,bob,,40,FR\n"})
    done = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation: 0 valid, 2 rejected" in done.stdout
    assert "completed" in done.stdout
    assert "--retry-errors" not in done.stdout
    (listed,) = json.loads(elspeth_cli("runs", "list", "--settings", "settings.yaml", "--json").stdout)
    assert listed["status"] == "completed"  # the run store agrees with the terminal
    assert len(read_csv(tmp_path / "output/rejects.csv")) == 2
    strict = elspeth_cli("run", "settings.yaml", "--no-progress", "--strict")  # a gate: --strict fails on any reject
    assert strict.returncode == 1


def test_prompts_the_validation_orchestrator_ignores_are_reported_with_their_line(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, people: str, tmp_path: Path
) -> None:
    text = SETTINGS.replace("orchestrator:\n", 'prompts:\n  user: "Is {{ name }} real?"\norchestrator:\n')
    write_settings(text, {"people.csv": people})
    line = text.splitlines().index("prompts:") + 1
    warning = (
        "warning: prompts: orchestrator 'validation' uses no prompts: `prompts` is ignored (remove it, or choose "
        f"an orchestrator that renders prompts) (settings.yaml:{line})"
    )
    for command in ("validate", "run"):
        done = elspeth_cli(command, "settings.yaml", *(["--no-progress"] if command == "run" else []))
        assert done.returncode == 0, done.stderr
        assert warning in done.stderr, done.stderr
    write_settings(SETTINGS, {"people.csv": people})
    quiet = elspeth_cli("validate", "settings.yaml")
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
