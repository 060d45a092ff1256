"""A server that echoes the key in its errors and replies: no file, store, report, bundle or console line holds it.

The LLM test server runs with ``echo_credentials``: every error message ends with ``Credential
presented: Bearer <key>`` and every reply's text with ``(sent with Bearer <key>)``. Two runs (an
experiment and a batch run) write every kind of output a run has: csv/jsonl/json sinks, the audit
trail with prompts and responses, the run store, the signed bundle, the Excel workbook and the
reports. Then every byte under the project folder (inside the workbook's zip too) and both consoles
are searched for the key and the signing key.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "LEAK_TEST_OPENAI_KEY"
KEY = "sk-leaktest-4f9c2a7e1b8d6035ZQ"
SIGNING = "signing-leaktest-8c1e5b2a9d7f"
REDACTED = f"<redacted:{KEY_ENV}>"
Cli = Callable[..., Any]

DATA = "id,review\n" + "".join(f"{i},review of row-{i}\n" for i in range(1, 9))

COMMON = """
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm:
  plugin: openai
  options: {model: gpt-test, base_url: "URL", api_key_env: LEAK_TEST_OPENAI_KEY, transport: httpx}
middleware:
  - {plugin: audit_logger, options: {include_prompts: true, include_responses: true}}
prompts:
  system: 'Reply with "Score: N".'
  user: 'Review: {{ review }}'
retry: {max_attempts: 2, initial_delay_s: 0.01, max_delay_s: 0.02, timeout_s: 10}
output_dir: output
"""

EXPERIMENT = """
name: leak-check
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
    aggregators: [score_stats]
    experiments:
      - {name: baseline, baseline: true}
      - {name: strict, prompts: {system: 'Be strict. Reply with "Score: N".'}}
sinks:
  - {plugin: csv, options: {path: results.csv, failures_path: failures.csv}}
  - {plugin: jsonl, options: {path: results.jsonl}}
  - {plugin: json, options: {path: summary.json}}
  - excel
  - analytics_report
  - visual_report
  - signed
"""

BATCH = """
name: leak-check-batch
orchestrator: {plugin: batch, options: {output_field: response}}
sinks:
  - {plugin: csv, options: {path: batch.csv, failures_path: batch_failures.csv}}
  - {plugin: jsonl, options: {path: batch.jsonl}}
  - {plugin: json, options: {path: batch_summary.json}}
  - {plugin: signed, options: {path: batch_signed}}
"""


def every_blob(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root`` as bytes, and each member of a zip file (a workbook) as its own."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    yield f"{path}!{name}", archive.read(name)


def leaky(server: LLMTestServer) -> None:
    server.configure(api_key=KEY, echo_credentials=True)
    for row in ("row-2", "row-5"):
        server.script(["401"] * 2, match=row)
    server.script(["500"] * 4, match="row-3")
    server.script(["429:0"], match="row-7")


@pytest.fixture
def project(tmp_path: Path, llm_server_factory: LLMServerFactory) -> tuple[Path, LLMTestServer]:
    server = llm_server_factory()
    leaky(server)
    (tmp_path / "data.csv").write_text(DATA, encoding="utf-8")
    common = COMMON.replace("URL", server.openai_base_url)
    (tmp_path / "experiment.yaml").write_text(common + EXPERIMENT, encoding="utf-8")
    (tmp_path / "batch.yaml").write_text(common + BATCH, encoding="utf-8")
    return tmp_path, server


def test_an_echoed_key_is_in_no_output_store_report_bundle_or_console(
    cli: Cli, project: tuple[Path, LLMTestServer]
) -> None:
    root, server = project
    env = {KEY_ENV: KEY, "ELSPETH_SIGNING_KEY": SIGNING}
    experiment = cli("run", "experiment.yaml", "--no-progress", cwd=root, env=env)
    assert experiment.returncode == 0, experiment.stderr
    batch = cli("--debug", "run", "batch.yaml", "--no-progress", cwd=root, env=env)
    assert batch.returncode == 0, batch.stderr

    # the server did echo the key, and the runs did meet failures and replies holding it
    sent = server.requests("chat/completions")
    assert all(r.credential_ok for r in sent)
    assert {"401", "500", "429", "ok"} <= {r.outcome for r in sent}
    failures = (root / "output/failures.csv").read_text(encoding="utf-8")
    assert f"Credential presented: Bearer {REDACTED}" in failures
    assert f"(sent with Bearer {REDACTED})" in (root / "output/results.jsonl").read_text(encoding="utf-8")
    assert (root / "output/elspeth-runs.sqlite").is_file()
    written = dict(every_blob(root))
    assert any(name.endswith(".xlsx!xl/worksheets/sheet1.xml") for name in written)
    assert any("signed" in name and "manifest" in name for name in written)
    assert any(f"redacted:{KEY_ENV}".encode() in data for name, data in written.items() if name.endswith(".xml"))

    for name, data in written.items():
        assert KEY.encode() not in data, f"{name} holds the API key"
        assert SIGNING.encode() not in data, f"{name} holds the signing key"
    for done in (experiment, batch):
        console = done.stdout + done.stderr
        assert KEY not in console
        assert SIGNING not in console
    assert "DEBUG" in batch.stderr  # --debug logged, through the scrubbing filter
