"""``elspeth run`` in a subprocess, reading rows from Azurite and writing the results back to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from elspeth_testing import run_cli

SETTINGS = """\
name: blob-e2e
datasource:
  plugin: {source}
  options:
    container: {container}
    blob: inputs/reviews.csv
    id_column: id
    connection_string_env: E2E_STORAGE
llm:
  plugin: mock
  options: {{seed: 7}}
prompts:
  system: 'Reply with "Score: N" where N is between 0 and 1.'
  user: "Product: {{{{ product }}}}. Review: {{{{ review }}}}"
orchestrator:
  plugin: experiment
  options:
    row_plugins: [{{plugin: score_extractor, options: {{threshold: 0.6}}}}]
    aggregators: [score_stats]
    experiments:
      - {{name: baseline, baseline: true}}
      - {{name: other-seed, llm_options: {{seed: 11}}}}
sinks:
  - plugin: csv
    options: {{path: results.csv}}
  - plugin: azure_blob
    options:
      container: {out_container}
      prefix: "{{name}}/{{run_id}}/"
      files: ["*.csv"]
      connection_string_env: E2E_STORAGE
output_dir: output
"""

REVIEWS = "id,product,review\n" + "".join(f"r{i},product {i},review number {i} é\n" for i in range(12))


def _write(tmp_path: Path, **fields: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.format(**fields), encoding="utf-8")
    return path


def test_elspeth_run_reads_from_and_writes_to_blob_storage(
    service: Any, container: str, azurite: Any, tmp_path: Path
) -> None:
    pytest.importorskip("elspeth_experiment", reason="needs elspeth-orchestrator-experiment installed")
    service.get_blob_client(container, "inputs/reviews.csv").upload_blob(REVIEWS)
    _write(tmp_path, source="azure_blob", container=container, out_container=container)

    done = run_cli("run", "settings.yaml", cwd=tmp_path, env={"E2E_STORAGE": azurite.connection_string})

    assert done.returncode == 0, done.stderr
    assert "24 records, 0 failures" in done.stdout
    assert azurite.key not in done.stdout + done.stderr
    names = [b.name for b in service.get_container_client(container).list_blobs(name_starts_with="blob-e2e/")]
    (manifest_name,) = [n for n in names if n.endswith("/manifest.json")]
    run_id = manifest_name.split("/")[1]
    assert run_id in done.stdout
    manifest = json.loads(service.get_blob_client(container, manifest_name).download_blob().readall())
    assert {b["blob"].rsplit("/", 1)[1] for b in manifest["blobs"]} == {"results.jsonl", "summary.json", "results.csv"}
    results = service.get_blob_client(container, f"blob-e2e/{run_id}/results.jsonl").download_blob().readall()
    rows = [json.loads(line) for line in results.decode().splitlines()]
    assert len(rows) == 24
    assert {(r["experiment"], r["row_id"]) for r in rows} == {
        (e, f"r{i}") for e in ("baseline", "other-seed") for i in range(12)
    }
    assert rows[0]["inputs"]["review"] == "review number 0 é"
    uploaded_csv = service.get_blob_client(container, f"blob-e2e/{run_id}/output/results.csv").download_blob().readall()
    assert uploaded_csv == (tmp_path / "output" / "results.csv").read_bytes()
    props = service.get_blob_client(container, f"blob-e2e/{run_id}/results.jsonl").get_blob_properties()
    assert props.metadata["run_id"] == run_id
    wrote = done.stdout.split("wrote:", 1)[1]  # the local csv, then every blob the upload reported
    for name in ("results.jsonl", "summary.json", "output/results.csv", "manifest.json"):
        assert f"127.0.0.1:{azurite.port}/devstoreaccount1/{container}/blob-e2e/{run_id}/{name}" in wrote, name


def test_elspeth_run_names_a_missing_input_blob_and_writes_nothing(
    service: Any, container: str, azurite: Any, tmp_path: Path
) -> None:
    pytest.importorskip("elspeth_experiment", reason="needs elspeth-orchestrator-experiment installed")
    _write(tmp_path, source="csv_blob", container=container, out_container=container)

    done = run_cli("run", "settings.yaml", cwd=tmp_path, env={"E2E_STORAGE": azurite.connection_string})

    assert done.returncode == 2
    assert f"blob 'inputs/reviews.csv' does not exist in container '{container}'" in done.stderr
    assert "settings.yaml" in done.stderr
    assert azurite.key not in done.stdout + done.stderr
    assert list(service.get_container_client(container).list_blobs()) == []


def test_a_secret_written_into_the_settings_is_refused(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "datasource:\n"
        "  plugin: azure_blob\n"
        "  options: {container: c, blob: a.csv, sas_token: 'sv=2024&sig=abc'}\n"
        "orchestrator: experiment\n",
        encoding="utf-8",
    )
    done = run_cli("validate", "settings.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert "datasource.options.sas_token: secrets are read only from environment variables" in done.stderr
    assert "sas_token_env" in done.stderr
    assert "sig=abc" not in done.stdout + done.stderr
