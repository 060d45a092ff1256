"""The ``azure_blob`` sink uploads every file of a run, wherever it stands in the settings' sinks.

A real settings file is run in-process (the ``rows`` orchestrator from ``elspeth-testing``), so these
tests pass with only ``elspeth-core`` and ``elspeth-testing`` installed; the Excel sink joins in when
``elspeth-sink-excel`` is installed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import Artifact, PluginContext, RunResult
from elspeth.config import load_settings
from elspeth.discovery import PluginSource
from elspeth.engine import run_settings
from elspeth_azure_blob import AzureBlobSink, BlobError
from elspeth_testing import sample_run_result
from elspeth_testing.plugin import MakeRegistry, WriteSettings

HAS_EXCEL = importlib.util.find_spec("elspeth_sink_excel") is not None
HAS_SIGNED = importlib.util.find_spec("elspeth_signed") is not None
# the signed sink is elspeth-signed's: from built wheels with only core and elspeth-testing beside this
# distribution, the tests that sign a bundle are skipped
needs_signed = pytest.mark.skipif(not HAS_SIGNED, reason="elspeth-signed is not installed")
SIGNING_KEY = "blob-signing-key-0123456789abcdef"


def blob_names(service: Any, container: str) -> list[str]:
    return sorted(b.name for b in service.get_container_client(container).list_blobs())


def run(
    write_settings: WriteSettings, make_registry: MakeRegistry, sinks: str, *, level: str = "OFFICIAL"
) -> tuple[RunResult, Path]:
    plugins = [PluginSource("azure_blob", "elspeth-azure-blob", "0.1.0", "elspeth_azure_blob.plugin")]
    if HAS_SIGNED:
        plugins.append(PluginSource("signed", "elspeth-signed", "0.1.0", "elspeth_signed.plugin"))
    if HAS_EXCEL:
        plugins.append(PluginSource("excel", "elspeth-sink-excel", "0.1.0", "elspeth_sink_excel.plugin"))
    path = write_settings(
        f"""
        name: shipped
        security_level: {level}
        datasource: {{plugin: csv, options: {{path: d.csv, id_column: id}}}}
        orchestrator: rows
        sinks:
        {sinks}
        """,
        {"d.csv": "id,text\na,café\nb,tea\nc,=1+1\n"},
    )
    return run_settings(load_settings(path), make_registry(*plugins)), path.parent / "output"


@needs_signed
def test_every_artifact_of_a_real_run_is_uploaded_with_run_id_and_security_level(
    service: Any,
    container: str,
    azure_env: dict[str, str],
    write_settings: WriteSettings,
    make_registry: MakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", SIGNING_KEY)
    third = "{plugin: excel, security_level: OFFICIAL}" if HAS_EXCEL else "{plugin: jsonl, security_level: OFFICIAL}"
    # the upload is listed first and the signed bundle second: both still see every file the others write
    result, out = run(
        write_settings,
        make_registry,
        f"""
          - {{plugin: azure_blob, security_level: OFFICIAL, options: {{container: {container}, prefix: "r/",
              connection_string_env: TEST_AZURITE_CONNECTION}}}}
          - {{plugin: signed, security_level: OFFICIAL}}
          - {{plugin: csv, security_level: OFFICIAL, options: {{path: results.csv}}}}
          - {third}
        """,
    )
    local = "results.xlsx" if HAS_EXCEL else "results.jsonl"
    run_id = result.metadata.run_id
    signed = [f"r/output/signed/{n}" for n in ("aggregates.json", "failures.jsonl", "manifest.json")]
    signed += ["r/output/signed/metadata.json", "r/output/signed/records.jsonl"]
    expected = sorted(
        ["r/manifest.json", "r/results.jsonl", "r/summary.json", "r/output/results.csv", f"r/output/{local}", *signed]
    )
    assert blob_names(service, container) == expected
    for name in expected:
        props = service.get_blob_client(container, name).get_blob_properties()
        assert props.metadata["run_id"] == run_id, name
        assert props.metadata["security_level"] == "OFFICIAL", name
    for name in ("results.csv", local, "signed/manifest.json"):
        uploaded = service.get_blob_client(container, f"r/output/{name}").download_blob().readall()
        assert uploaded == (out / name).read_bytes(), name

    manifest = json.loads(service.get_blob_client(container, "r/manifest.json").download_blob().readall())
    assert manifest["security_level"] == "OFFICIAL"
    assert sorted(b["blob"] for b in manifest["blobs"]) == [n for n in expected if n != "r/manifest.json"]
    assert {b["file"] for b in manifest["blobs"] if "file" in b} == {"results.csv", local, *(s[9:] for s in signed)}

    # the signed bundle covers the csv and the third sink's file though it was listed before them
    signed_manifest = json.loads((out / "signed" / "manifest.json").read_text(encoding="utf-8"))
    assert {"results.csv", local} <= {f["path"] for f in signed_manifest["files"]}
    from elspeth_signed import verify_bundle

    assert verify_bundle(out / "signed", SIGNING_KEY.encode()).ok

    # the run lists the blobs by URL after the local files, so the CLI's "wrote:" shows them
    listed = [a["path"] for a in result.metadata.to_dict()["artifacts"]]
    blobs = [p for p in listed if p.startswith("http://127.0.0.1:")]
    assert [p.split(f"/{container}/", 1)[1] for p in blobs] == [
        "r/results.jsonl",
        "r/summary.json",
        "r/output/results.csv",
        f"r/output/{local}",
        *(f"r/output/signed/{n}" for n in ("records.jsonl", "failures.jsonl", "metadata.json", "aggregates.json")),
        "r/output/signed/manifest.json",
        "r/manifest.json",
    ]
    assert listed.index(blobs[0]) > max(i for i, p in enumerate(listed) if p not in blobs)


def test_include_run_artifacts_false_uploads_only_the_sinks_own_files(
    service: Any, container: str, azure_env: dict[str, str], write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    run(
        write_settings,
        make_registry,
        f"""
          - {{plugin: csv, options: {{path: results.csv}}}}
          - {{plugin: azure_blob, options: {{container: {container}, prefix: "r/", include_run_artifacts: false,
              connection_string_env: TEST_AZURITE_CONNECTION}}}}
        """,
        level="UNOFFICIAL",
    )
    assert blob_names(service, container) == ["r/manifest.json", "r/results.jsonl", "r/summary.json"]


def test_a_reported_file_outside_the_output_folder_is_named(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x\n", encoding="utf-8")
    result = sample_run_result()
    result.metadata.artifacts = [Artifact(outside, "text/csv", "csv")]
    sink = AzureBlobSink(AzureBlobSink.Options(container=container, connection_string_env="TEST_AZURITE_CONNECTION"))
    with pytest.raises(BlobError, match=r"a sink of this run wrote .*elsewhere\.csv, outside the output folder"):
        sink.write(result, plugin_context)
    result.metadata.artifacts = [Artifact(plugin_context.output_dir / "gone.csv", "text/csv", "csv")]
    with pytest.raises(BlobError, match=r"reported .*gone\.csv as written, but it is not there to upload"):
        sink.write(result, plugin_context)
    assert blob_names(service, container) == []  # nothing goes up when the set of files is wrong


def test_a_blob_already_uploaded_by_another_sink_is_not_uploaded_again(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    out = plugin_context.output_dir
    out.mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    result = sample_run_result()
    result.metadata.artifacts = [
        Artifact(out / "results.csv", "text/csv", "csv"),
        Artifact(
            Path("c/r/results.jsonl"),
            "application/jsonl",
            "azure_blob",
            "https://other.blob.core.windows.net/c/r/results.jsonl",
        ),
    ]
    sink = AzureBlobSink(
        AzureBlobSink.Options(container=container, prefix="x/", connection_string_env="TEST_AZURITE_CONNECTION")
    )
    written = sink.write(result, plugin_context)
    assert blob_names(service, container) == [
        "x/manifest.json",
        "x/output/results.csv",
        "x/results.jsonl",
        "x/summary.json",
    ]
    assert [a.url.rsplit("/", 1)[1] for a in written] == [
        "results.jsonl",
        "summary.json",
        "results.csv",
        "manifest.json",
    ]


def test_the_reported_url_reads_the_blob(
    service: Any, container: str, azurite: Any, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    from azure.storage.blob import BlobClient

    sink = AzureBlobSink(
        AzureBlobSink.Options(
            container=container, prefix="with space/", connection_string_env="TEST_AZURITE_CONNECTION"
        )
    )
    written = sink.write(sample_run_result(), plugin_context)
    assert written[0].url == f"{azurite.account_url}/{container}/with%20space/results.jsonl"
    credential = {"account_name": azurite.account, "account_key": azurite.key}
    with BlobClient.from_blob_url(written[0].url, credential=credential) as client:
        assert client.download_blob().readall().startswith(b'{"status": "ok"')
