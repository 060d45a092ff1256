"""The ``azure_blob`` sink against Azurite: what lands in the container, with which metadata, and its errors."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import Artifact, ElspethError, PluginContext, Record, RunMetadata, RunResult
from elspeth_azure_blob import AzureBlobSink, BlobArtifact, BlobError
from elspeth_testing import SinkContract, sample_run_result

MiB = 1024 * 1024


def build(**options: Any) -> AzureBlobSink:
    return AzureBlobSink(AzureBlobSink.Options.model_validate(options))


def blob_text(service: Any, container: str, name: str) -> str:
    data: bytes = service.get_blob_client(container, name).download_blob().readall()
    return data.decode("utf-8")


def blob_digest(service: Any, container: str, name: str) -> tuple[int, str]:
    """Size and SHA-256 of a blob, streamed so a big one is never held whole."""
    digest, size = hashlib.sha256(), 0
    for chunk in service.get_blob_client(container, name).download_blob().chunks():
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


class TestAzureBlobSinkContract(SinkContract):
    """The sink contract, with every check reading what actually landed in the container.

    Blobs are not local files, so ``write`` here checks that the sink reported every blob the
    manifest lists (and the manifest, last), downloads them into a folder outside the output folder
    and reports those as the artifacts.
    """

    plugin_class = AzureBlobSink

    @pytest.fixture(autouse=True)
    def _reader(self, service: Any, container: str, tmp_path: Path) -> None:
        self.service, self.container, self.downloads = service, container, tmp_path / "downloaded"

    @pytest.fixture
    def plugin_options(self, container: str, azure_env: dict[str, str]) -> dict[str, Any]:
        return {"container": container, "prefix": "contract/", "connection_string_env": "TEST_AZURITE_CONNECTION"}

    def write(self, plugin: Any, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        uploaded = super().write(plugin, result, ctx)
        manifest = json.loads(blob_text(self.service, self.container, "contract/manifest.json"))
        names = [b["blob"] for b in manifest["blobs"]] + ["contract/manifest.json"]
        assert all(isinstance(a, BlobArtifact) for a in uploaded)
        assert [a.url.split(f"/{self.container}/", 1)[1] for a in uploaded] == names
        artifacts = []
        for artifact, name in zip(uploaded, names, strict=True):
            path = self.downloads / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(blob_text(self.service, self.container, name), encoding="utf-8")
            artifacts.append(Artifact(path, artifact.media_type, artifact.sink))
        return artifacts

    def remote_artifact_exists(self, url: str) -> bool:
        """The contract's real run lists blobs by URL: check each landed in the container."""
        name = url.split(f"/{self.container}/", 1)[1]
        return bool(self.service.get_blob_client(self.container, name).exists())

    def test_lists_the_real_runs_blobs_by_url(
        self, plugin_options: dict[str, Any], plugin_context: PluginContext
    ) -> None:
        """The run's artifact listing names the sink's three blobs by URL, each really uploaded."""
        from elspeth.config import load_settings_text
        from elspeth.engine import run_settings

        base = Path(plugin_context.base_dir)
        (base / "contract.csv").write_text("id,text\na,x\nb,plain\n", encoding="utf-8")
        text = (
            "datasource: {plugin: csv, options: {path: contract.csv, id_column: id}}\n"
            "orchestrator: rows\n"
            f"sinks:\n  - {{plugin: azure_blob, options: {json.dumps(plugin_options)}}}\n"
            f"output_dir: {json.dumps(str(plugin_context.output_dir))}\n"
        )
        result = run_settings(load_settings_text(text, base_dir=base), self.registry("datasources"))
        listed = result.metadata.to_dict()["artifacts"]
        assert [a["path"].rsplit("/", 1)[1] for a in listed] == ["results.jsonl", "summary.json", "manifest.json"]
        assert all(self.remote_artifact_exists(a["path"]) for a in listed)


def test_uploads_results_summary_and_manifest_under_the_run_prefix_with_metadata(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    result = sample_run_result("first", records=3, failures=1)
    result.metadata.security_level = "OFFICIAL_SENSITIVE"
    build(container=container, connection_string_env="TEST_AZURITE_CONNECTION").write(result, plugin_context)

    names = sorted(b.name for b in service.get_container_client(container).list_blobs())
    assert names == [
        "contract/run-first/manifest.json",
        "contract/run-first/results.jsonl",
        "contract/run-first/summary.json",
    ]

    lines = [
        json.loads(line) for line in blob_text(service, container, "contract/run-first/results.jsonl").splitlines()
    ]
    assert [(item["status"], item["row_id"]) for item in lines] == [
        ("ok", "first-0"),
        ("ok", "first-1"),
        ("ok", "first-2"),
        ("failed", "first-failed-0"),
    ]
    assert lines[0]["inputs"] == dict(result.records[0].inputs)

    summary = json.loads(blob_text(service, container, "contract/run-first/summary.json"))
    assert summary["metadata"]["run_id"] == "run-first"
    assert summary["aggregates"] == result.aggregates

    manifest = json.loads(blob_text(service, container, "contract/run-first/manifest.json"))
    assert manifest["run_id"] == "run-first"
    assert manifest["security_level"] == "OFFICIAL_SENSITIVE"
    assert manifest["container"] == container
    assert sorted(b["blob"] for b in manifest["blobs"]) == names[1:]
    for entry in manifest["blobs"]:
        assert (entry["size"], entry["sha256"]) == blob_digest(service, container, entry["blob"])

    for name in names:
        props = service.get_blob_client(container, name).get_blob_properties()
        assert props.metadata["run_id"] == "run-first"
        assert props.metadata["security_level"] == "OFFICIAL_SENSITIVE"
        assert props.metadata["sha256"] == blob_digest(service, container, name)[1]
        assert props.content_settings.content_type.startswith("application/json")


def test_security_level_defaults_to_unofficial_and_extra_metadata_is_added(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    sink = build(
        container=container,
        prefix="runs/{run_id}",
        metadata={"team": "evals"},
        summary_name=None,
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    sink.write(sample_run_result("x"), plugin_context)
    names = sorted(b.name for b in service.get_container_client(container).list_blobs())
    assert names == ["runs/run-xmanifest.json", "runs/run-xresults.jsonl"]  # the prefix is used exactly as given
    props = service.get_blob_client(container, names[1]).get_blob_properties()
    assert props.metadata["security_level"] == "UNOFFICIAL"
    assert props.metadata["team"] == "evals"


def test_files_written_by_earlier_sinks_are_uploaded_and_listed(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    out = plugin_context.output_dir
    (out / "tables").mkdir(parents=True)
    (out / "results.csv").write_text("row_id,score\na,1\n", encoding="utf-8")
    (out / "tables" / "by_group.csv").write_text("group,mean\nx,0.5\n", encoding="utf-8")
    sink = build(
        container=container,
        prefix="p/",
        files=["*.csv", "tables/*.csv"],
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    sink.write(sample_run_result(), plugin_context)
    manifest = json.loads(blob_text(service, container, "p/manifest.json"))
    listed = {b["blob"]: b for b in manifest["blobs"]}
    assert set(listed) == {"p/results.jsonl", "p/summary.json", "p/output/results.csv", "p/output/tables/by_group.csv"}
    assert blob_text(service, container, "p/output/tables/by_group.csv") == "group,mean\nx,0.5\n"
    assert listed["p/output/results.csv"]["content_type"] == "text/csv"
    assert listed["p/output/tables/by_group.csv"]["file"] == "tables/by_group.csv"
    build(
        container=container,
        prefix="flat/",
        files=["*.csv"],
        output_folder="",
        connection_string_env="TEST_AZURITE_CONNECTION",
    ).write(sample_run_result(), plugin_context)
    assert blob_text(service, container, "flat/results.csv") == "row_id,score\na,1\n"
    with pytest.raises(BlobError, match=r"files: '\*\.xlsx' matches no file in the output folder"):
        build(container=container, files=["*.xlsx"], connection_string_env="TEST_AZURITE_CONNECTION").write(
            sample_run_result(), plugin_context
        )


def test_a_missing_container_is_named_unless_asked_to_create_it(
    service: Any, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    sink = build(container="not-there-yet", connection_string_env="TEST_AZURITE_CONNECTION")
    with pytest.raises(
        ElspethError, match="container 'not-there-yet' does not exist in storage account 'devstoreaccount1'"
    ):
        sink.write(sample_run_result(), plugin_context)
    try:
        build(container="not-there-yet", create_container=True, connection_string_env="TEST_AZURITE_CONNECTION").write(
            sample_run_result(), plugin_context
        )
        assert service.get_blob_client("not-there-yet", "contract/run-first/manifest.json").exists()
    finally:
        service.delete_container("not-there-yet")


def test_a_wrong_key_is_named_without_the_key(
    container: str, azurite: Any, monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    wrong = azurite.key[:-6] + "AAAA=="
    monkeypatch.setenv("TEST_WRONG_KEY", wrong)
    sink = build(account_url=azurite.account_url, container=container, account_key_env="TEST_WRONG_KEY")
    with pytest.raises(ElspethError) as caught:
        sink.write(sample_run_result(), plugin_context)
    message = str(caught.value)
    assert "storage account 'devstoreaccount1'" in message
    assert f"container '{container}'" in message
    assert "the account key in $TEST_WRONG_KEY" in message
    assert wrong not in message
    assert azurite.key not in message


def test_overwrite_false_refuses_to_replace_a_blob(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    sink = build(container=container, prefix="fixed/", overwrite=False, connection_string_env="TEST_AZURITE_CONNECTION")
    sink.write(sample_run_result(), plugin_context)
    with pytest.raises(BlobError, match=f"blob 'fixed/results.jsonl' in container '{container}'.* already exists"):
        sink.write(sample_run_result(), plugin_context)


def test_account_key_and_sas_token_authenticate_too(
    service: Any,
    container: str,
    azurite: Any,
    azure_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    plugin_context: PluginContext,
) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    build(
        account_url=azurite.account_url, container=container, prefix="key/", account_key_env="TEST_AZURITE_KEY"
    ).write(sample_run_result(), plugin_context)
    token = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("TEST_SAS", token)
    build(account_url=azurite.account_url, container=container, prefix="sas/", sas_token_env="TEST_SAS").write(
        sample_run_result(), plugin_context
    )
    names = {b.name for b in service.get_container_client(container).list_blobs()}
    assert {"key/manifest.json", "sas/manifest.json"} <= names


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prefix": "{experiment}/"}, r"prefix may use \{run_id\} and \{name\} only, not \{experiment\}"),
        ({"metadata": {"bad-key": "x"}}, "metadata key 'bad-key' must be letters, digits and underscores"),
        ({"account_url": "https://a.blob.core.windows.net?sig=x"}, "must not carry a query"),
        ({"max_block_size": 10}, "max_block_size"),
    ],
)
def test_options_that_cannot_work_are_refused(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        AzureBlobSink.Options.model_validate({"container": "c", "connection_string_env": "X", **options})


def test_default_azure_credential_is_the_default_and_needs_no_secret_at_start_up() -> None:
    sink = build(account_url="https://acct.blob.core.windows.net", container="c")
    assert sink.options.credentials().describe() == "DefaultAzureCredential"


def test_a_result_over_100_mb_goes_up_in_blocks_and_reads_back_identical(
    service: Any,
    container: str,
    azure_env: dict[str, str],
    plugin_context: PluginContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(20251014)
    records = [
        Record(row_id=f"r{i}", inputs={"i": i}, outputs={"response": rng.randbytes(52_000).hex()}) for i in range(1000)
    ]
    meta = RunMetadata(run_id="big", name="big", orchestrator="test", rows=1000, succeeded=1000)
    sink = build(
        container=container,
        prefix="big/",
        max_block_size=8 * MiB,
        max_concurrency=4,
        summary_name=None,
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    with caplog.at_level(logging.INFO, logger="elspeth"):
        sink.write(RunResult(records, [], {}, meta), plugin_context)

    manifest = json.loads(blob_text(service, container, "big/manifest.json"))
    (entry,) = manifest["blobs"]
    assert entry["size"] > 100 * 1000 * 1000
    assert blob_digest(service, container, "big/results.jsonl") == (entry["size"], entry["sha256"])

    blocks = service.get_blob_client(container, "big/results.jsonl").get_block_list("committed")[0]
    assert len(blocks) == -(-entry["size"] // (8 * MiB))
    assert all(b.size <= 8 * MiB for b in blocks)

    seen = 0
    for chunk_line in blob_text(service, container, "big/results.jsonl").splitlines():
        item = json.loads(chunk_line)
        assert item["outputs"]["response"] == records[seen].outputs["response"]
        seen += 1
    assert seen == 1000
    progress = [r.getMessage() for r in caplog.records if "MB (" in r.getMessage()]
    assert len(progress) >= 5, progress
    assert progress[-1].startswith(f"uploaded {entry['size'] / 1e6:.1f} of")
    assert f"to {container}/big/results.jsonl" in progress[-1]


def test_a_container_scoped_sas_names_a_missing_container_on_upload(
    azurite: Any, monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    token = generate_container_sas(
        azurite.account,
        "gone",
        account_key=azurite.key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("TEST_SAS", token)
    sink = build(account_url=azurite.account_url, container="gone", sas_token_env="TEST_SAS")
    with pytest.raises(BlobError) as caught:
        sink.write(sample_run_result(), plugin_context)
    assert "container 'gone' does not exist in storage account 'devstoreaccount1'" in str(caught.value)
    assert token not in str(caught.value)


def test_no_secret_reaches_any_log_even_at_debug_level(
    service: Any,
    container: str,
    azurite: Any,
    azure_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    plugin_context: PluginContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from elspeth_azure_blob import AzureBlobDataSource

    token = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("TEST_SAS", token)
    service.get_blob_client(container, "in.csv").upload_blob("id,x\n1,a\n2,b\n")
    with caplog.at_level(logging.DEBUG):
        for env in ("connection_string_env", "account_key_env", "sas_token_env"):
            name = {"connection_string_env": "TEST_AZURITE_CONNECTION", "account_key_env": "TEST_AZURITE_KEY"}.get(
                env, "TEST_SAS"
            )
            where = {"account_url": azurite.account_url, env: name}
            source = AzureBlobDataSource(AzureBlobDataSource.Options(container=container, blob="in.csv", **where))
            assert len(list(source.load(plugin_context).rows)) == 2
            build(container=container, prefix=f"{env}/", **where).write(sample_run_result(), plugin_context)
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "uploading" in logged
    assert azurite.key not in logged
    signature = token.split("sig=")[1].split("&")[0]
    assert signature not in logged
