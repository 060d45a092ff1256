"""elspeth-processors' plugins under the ``experiment`` orchestrator: redaction before the prompt and any failure."""

from __future__ import annotations

import json

import pytest

from elspeth.discovery import PluginSource
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

pytest.importorskip("elspeth_experiment")
PLUGIN = PluginSource("processors", "elspeth-processors", "0.1.0", "elspeth_processors.plugin")
pytest.importorskip("jsonschema")

SETTINGS = """\
datasource: {plugin: csv, options: {path: people.csv, id_column: id}}
llm: {plugin: static, options: {content: "Score: 4"}}
prompts:
  system: "Rate the note."
  user: "{{ note }} (age {{ age }})"
orchestrator: experiment
processors:
  - {plugin: pii_redaction, options: {columns: [note]}}
  - {plugin: schema_validation, options: {schema: {properties: {age: {type: integer, minimum: 0}}}}}
middleware: [{plugin: audit_logger, options: {path: audit.jsonl, include_prompts: true}}]
sinks:
  - {plugin: csv, options: {path: results.csv, failures_path: failures.csv}}
  - {plugin: json, options: {path: summary.json}}
"""
PEOPLE = (
    "id,note,age\n"
    "a,write to ann@example.org,34\n"
    "b,card 5555 5555 5555 4444 or bob@example.net,-3\n"
    "c,call +44 20 7946 0958,51\n"
)
PERSONAL = ["ann@example.org", "bob@example.net", "5555 5555 5555 4444", "+44 20 7946 0958"]


def test_pii_redaction_runs_before_the_prompt_and_a_later_failure_keeps_the_redacted_row(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    path = write_settings(SETTINGS, {"people.csv": PEOPLE})
    result = run_settings(path, make_registry("elspeth_experiment.plugin", PLUGIN))
    assert [r.inputs["note"] for r in result.records] == ["write to [EMAIL]", "call [PHONE]"]
    assert [r.inputs["age"] for r in result.records] == [34, 51], "schema_validation's coerced values go on"
    (failure,) = result.failures
    assert (failure.row_id, failure.stage) == ("b", "processor")
    assert failure.error.startswith("SchemaViolation: row does not match the schema: field 'age'")
    assert failure.inputs["note"] == "card [CARD] or [EMAIL]"
    output = path.parent / "output"
    trail = [json.loads(line) for line in (output / "audit.jsonl").read_text("utf-8").splitlines()]
    prompts = {e["row_id"]: e["user"] for e in trail if e["event"] == "request"}
    assert prompts == {"a": "write to [EMAIL] (age 34)", "c": "call [PHONE] (age 51)"}
    summary = result.metadata.to_dict()["processor"]
    found = summary["pii_redaction"]["found"]
    assert (found["email"], found["card"], found["phone"]) == (2, 1, 1)
    assert summary["schema_validation"] == {"checked": 3, "failed": 1}
    written = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    assert {"results.csv", "failures.csv", "summary.json", "audit.jsonl", "elspeth-runs.sqlite"} <= set(written)
    for name, content in written.items():
        for value in PERSONAL:
            assert value.encode() not in content, f"{value} is in {name}"
