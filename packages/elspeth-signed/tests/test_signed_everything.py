"""Signed means everything: every file a run writes beside its signed files is in the manifest.

With ``audit_logger`` and ``signed`` both on their defaults, the audit trail lies in the output folder
beside the signed CSV; a fresh bundle must verify, and a change to the trail must be named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from elspeth.cli import app
from elspeth_signed import verify_bundle
from elspeth_testing.plugin import RunSettings, WriteSettings

KEY = "everything-key-0123456789abcdef0123456789abcdef"

SETTINGS = """
datasource: {plugin: csv, options: {path: d.csv}}
llm: {plugin: static, options: {content: "fine"}}
prompts: {user: "Rate {{ text }}"}
middleware: [audit_logger]
orchestrator: rows
sinks:
  - {plugin: csv, options: {path: results.csv}}
  - signed
"""


@pytest.fixture
def output(write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run's output folder: results.csv, the audit trail and the signed bundle, all on their defaults."""
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)
    settings = write_settings(SETTINGS, {"d.csv": "text\nnaïve\ncafé\n"})
    run_settings(settings)
    return settings.parent / "output"


def test_the_audit_trail_beside_signed_files_is_listed_and_a_fresh_bundle_verifies(output: Path) -> None:
    trail = output / "audit.jsonl"
    assert trail.is_file()
    assert trail.read_text(encoding="utf-8").count('"event": "request"') == 2
    manifest = json.loads((output / "signed" / "manifest.json").read_text(encoding="utf-8"))
    assert "audit.jsonl" in {f["path"] for f in manifest["files"]}
    report = verify_bundle(output / "signed", KEY.encode())
    assert report.ok, [str(f) for f in report.findings]
    done = CliRunner().invoke(app, ["verify", str(output)], env={"ELSPETH_SIGNING_KEY": KEY})
    assert done.exit_code == 0, done.output
    assert "signature and 6 files verified" in done.stdout  # results.csv, audit.jsonl and the bundle's four


def test_a_changed_audit_trail_is_named_as_tampered(output: Path) -> None:
    with (output / "audit.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"event": "request", "row_id": "forged"}\n')
    done = CliRunner().invoke(app, ["verify", str(output)], env={"ELSPETH_SIGNING_KEY": KEY})
    assert done.exit_code == 1
    assert "TAMPERED audit.jsonl: sha256" in done.stdout
