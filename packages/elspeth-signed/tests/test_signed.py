"""The ``signed`` sink and :mod:`elspeth_signed.signing`: what the bundle holds, what is signed, what verify finds."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import Artifact, ConfigError, ElspethError, PluginContext, RunResult, invoke
from elspeth_signed import SignedSink, find_bundles, verify_bundle
from elspeth_signed.signing import ManifestError, SigningKeyError, canonical_bytes, file_digest, sign_manifest
from elspeth_testing import SinkContract, run_async, sample_run_result
from elspeth_testing.plugin import RunSettings, WriteSettings

KEY = "test-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def signing_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)


class TestSignedSinkContract(SinkContract):
    plugin_class = SignedSink


class TestSignedSinkSha512Contract(SinkContract):
    plugin_class = SignedSink

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"path": "deep/bundle", "algorithm": "hmac-sha512"}


def write(ctx: PluginContext, result: RunResult | None = None, **options: Any) -> Path:
    """Write a bundle with ``options`` and return its folder."""
    sink = SignedSink(SignedSink.Options(**options))
    artifacts: list[Artifact] = run_async(invoke(sink.write, result or sample_run_result(), ctx))
    return next(a.path.parent for a in artifacts if a.path.name == "manifest.json")


def manifest_of(bundle: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def kinds(bundle: Path, key: str = KEY) -> list[tuple[str, str]]:
    return [(f.kind, f.path) for f in verify_bundle(bundle, key.encode()).findings]


BUNDLE = ["signed/aggregates.json", "signed/failures.jsonl", "signed/metadata.json", "signed/records.jsonl"]


def test_bundle_holds_results_and_a_manifest_of_every_file(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    assert bundle == (plugin_context.output_dir / "signed").resolve()
    manifest = manifest_of(bundle)
    assert [f["path"] for f in manifest["files"]] == BUNDLE
    for entry in manifest["files"]:
        data = (plugin_context.output_dir / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    assert manifest["algorithm"] == "hmac-sha256"
    assert manifest["bundle"] == "signed"
    assert manifest["run_id"] == "run-first"
    records = [json.loads(line) for line in (bundle / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["row_id"] for r in records] == ["first-0", "first-1", "first-2"]
    failures = (bundle / "failures.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(failures[0])["error"].startswith("TimeoutError")
    assert json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))["cost"]["currency"] == "USD"
    assert json.loads((bundle / "aggregates.json").read_text(encoding="utf-8"))["score"]["mean"] == 0.25
    assert verify_bundle(bundle, KEY.encode()).ok


def test_signature_is_the_documented_hmac_over_the_canonical_manifest(plugin_context: PluginContext) -> None:
    manifest = manifest_of(write(plugin_context))
    body = {k: v for k, v in manifest.items() if k != "signature"}
    expected_bytes = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert canonical_bytes(manifest) == expected_bytes
    assert manifest["signature"] == hmac.new(KEY.encode(), expected_bytes, hashlib.sha256).hexdigest()


def test_sha512_variant_signs_and_verifies(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context, algorithm="hmac-sha512")
    manifest = manifest_of(bundle)
    assert manifest["algorithm"] == "hmac-sha512"
    assert len(manifest["signature"]) == 128
    assert manifest["signature"] == hmac.new(KEY.encode(), canonical_bytes(manifest), hashlib.sha512).hexdigest()
    assert verify_bundle(bundle, KEY.encode()).ok
    assert kinds(bundle, "another key") == [("bad-signature", "signed/manifest.json")]


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_key_is_refused_when_the_sink_is_built(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("SIGN_KEY", raising=False)
    else:
        monkeypatch.setenv("SIGN_KEY", value)
    state = "is not set" if value is None else "is empty"
    with pytest.raises(SigningKeyError, match=f"the signing key variable SIGN_KEY {state}"):
        SignedSink(SignedSink.Options(key_env="SIGN_KEY"))


def test_a_missing_key_stops_the_run_before_any_row(
    monkeypatch: pytest.MonkeyPatch, write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    monkeypatch.delenv("ELSPETH_SIGNING_KEY")
    path = write_settings(
        "datasource: {plugin: csv, options: {path: d.csv}}\norchestrator: rows\nsinks: [signed]\n", {"d.csv": "a\n1\n"}
    )
    with pytest.raises(ConfigError, match=r"sinks\[0\].*sink 'signed' could not start: the signing key variable"):
        run_settings(path)
    assert not (path.parent / "output").exists()


def test_options_refuse_paths_that_leave_the_output_folder() -> None:
    with pytest.raises(ValidationError, match="must be relative to the output folder"):
        SignedSink.Options(path="../elsewhere")
    with pytest.raises(ValidationError, match="must be relative to the output folder"):
        SignedSink.Options(files=["/etc/*"])


def test_earlier_sinks_artifacts_from_metadata_are_listed(plugin_context: PluginContext) -> None:
    out = plugin_context.output_dir
    out.mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    result = sample_run_result()
    result.metadata.artifacts = [Artifact(out / "results.csv", "text/csv", "csv")]
    bundle = write(plugin_context, result)
    assert [f["path"] for f in manifest_of(bundle)["files"]] == ["results.csv", *BUNDLE]
    assert verify_bundle(bundle, KEY.encode()).ok
    (out / "results.csv").write_text("row_id\ny\n", encoding="utf-8")
    assert kinds(bundle) == [("tampered", "results.csv")]


def test_include_run_artifacts_false_lists_only_the_bundle(plugin_context: PluginContext) -> None:
    result = sample_run_result()
    result.metadata.artifacts = [Artifact(plugin_context.output_dir / "not-even-there.csv", "text/csv", "csv")]
    bundle = write(plugin_context, result, include_run_artifacts=False, files=["*.csv"])
    assert [f["path"] for f in manifest_of(bundle)["files"]] == BUNDLE


def test_an_artifact_outside_the_output_folder_is_refused_by_name(
    plugin_context: PluginContext, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x\n", encoding="utf-8")
    result = sample_run_result()
    result.metadata.artifacts = [Artifact(outside, "text/csv", "csv")]
    with pytest.raises(ElspethError, match=r"an earlier sink wrote .*elsewhere\.csv, outside the output folder"):
        write(plugin_context, result)


def test_files_globs_add_files_and_an_empty_glob_is_warned(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    out = plugin_context.output_dir
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "a.html").write_text("<p>a</p>", encoding="utf-8")
    (out / "reports" / "b.html").write_text("<p>b</p>", encoding="utf-8")
    bundle = write(plugin_context, files=["reports/*.html", "*.xlsx"])
    assert [f["path"] for f in manifest_of(bundle)["files"]] == ["reports/a.html", "reports/b.html", *BUNDLE]
    assert "files pattern '*.xlsx' matched nothing" in caplog.text


def test_a_bundle_folder_with_foreign_files_is_not_signed(plugin_context: PluginContext) -> None:
    stray = plugin_context.output_dir / "signed" / "old-run.jsonl"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ElspethError, match=r"holds files this run did not write \(old-run\.jsonl\); empty it"):
        write(plugin_context)


def test_a_real_run_signs_the_csv_sinks_file_through_a_glob(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv, id_column: id}}
        orchestrator: rows
        sinks:
          - {plugin: csv, options: {path: results.csv}}
          - {plugin: signed, options: {files: ["*.csv"], algorithm: hmac-sha512}}
        """,
        {"d.csv": "id,text\na,café\nb,tea\n"},
    )
    result = run_settings(path)
    bundle = path.parent / "output" / "signed"
    assert [f["path"] for f in manifest_of(bundle)["files"]] == ["results.csv", *BUNDLE]  # listed once
    assert verify_bundle(bundle, KEY.encode()).ok
    assert str(bundle / "manifest.json") in [a["path"] for a in result.metadata.to_dict()["artifacts"]]


def test_a_real_run_lists_what_earlier_sinks_wrote_without_any_glob(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv, id_column: id}}
        orchestrator: rows
        sinks:
          - {plugin: csv, options: {path: out/results.csv}}
          - {plugin: jsonl, options: {path: results.jsonl}}
          - {plugin: signed, options: {path: bundle}}
        """,
        {"d.csv": "id,text\na,café\nb,tea\n"},
    )
    run_settings(path)
    bundle = path.parent / "output" / "bundle"
    listed = [f["path"] for f in manifest_of(bundle)["files"]]
    assert listed == [p.replace("signed/", "bundle/") for p in BUNDLE] + ["out/results.csv", "results.jsonl"]
    assert verify_bundle(bundle, KEY.encode()).ok


# --- verification ---------------------------------------------------------------------------------------------


def test_tampering_one_byte_of_a_results_file_is_named(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    data = bytearray((bundle / "records.jsonl").read_bytes())
    data[10] ^= 0x01
    (bundle / "records.jsonl").write_bytes(bytes(data))
    report = verify_bundle(bundle, KEY.encode())
    assert [(f.kind, f.path) for f in report.findings] == [("tampered", "signed/records.jsonl")]
    assert "manifest says" in report.findings[0].detail
    assert sorted(report.checked) == [p for p in BUNDLE if p != "signed/records.jsonl"]


def test_a_deleted_file_is_named_missing(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    (bundle / "failures.jsonl").unlink()
    assert kinds(bundle) == [("missing", "signed/failures.jsonl")]


def test_an_added_file_is_named_even_in_a_subfolder(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    (bundle / "extra.txt").write_text("sneaky", encoding="utf-8")
    (bundle / "sub").mkdir()
    (bundle / "sub" / "more.json").write_text("{}", encoding="utf-8")
    assert kinds(bundle) == [("added", "signed/extra.txt"), ("added", "signed/sub/more.json")]


def test_an_edited_hash_in_the_manifest_breaks_the_signature_and_names_the_entry(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    manifest = manifest_of(bundle)
    manifest["files"][1]["sha256"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    assert kinds(bundle) == [("bad-signature", "signed/manifest.json"), ("tampered", "signed/failures.jsonl")]


def test_an_entry_removed_from_the_manifest_breaks_the_signature_and_shows_as_added(
    plugin_context: PluginContext,
) -> None:
    bundle = write(plugin_context)
    manifest = manifest_of(bundle)
    del manifest["files"][0]
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert kinds(bundle) == [("bad-signature", "signed/manifest.json"), ("added", "signed/aggregates.json")]


def test_reformatting_the_manifest_does_not_break_the_signature(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    (bundle / "manifest.json").write_text(json.dumps(manifest_of(bundle)), encoding="utf-8")
    assert verify_bundle(bundle, KEY.encode()).ok


def test_a_wrong_key_gives_a_bad_signature_only(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    report = verify_bundle(bundle, b"not the key")
    assert [(f.kind, f.path) for f in report.findings] == [("bad-signature", "signed/manifest.json")]
    assert "signed with another key" in str(report.findings[0])


@pytest.mark.parametrize("evil", ["../outside.txt", "signed/../../outside.txt", "/etc/passwd", "C:/x", "a\\..\\b"])
def test_paths_that_escape_the_folder_are_rejected_even_with_a_valid_signature(
    plugin_context: PluginContext, tmp_path: Path, evil: str
) -> None:
    (tmp_path / "outside.txt").write_text("secret", encoding="utf-8")
    bundle = write(plugin_context)
    manifest = manifest_of(bundle)
    sha256, size = file_digest(tmp_path / "outside.txt")
    manifest["files"].append({"path": evil, "sha256": sha256, "size": size})
    manifest["signature"] = sign_manifest(manifest, KEY.encode())  # someone holding the key, or a buggy writer
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = verify_bundle(bundle, KEY.encode())
    assert [(f.kind, f.path) for f in report.findings] == [("unsafe-path", evil)]
    assert evil not in report.checked


def test_a_link_out_of_the_folder_is_rejected(plugin_context: PluginContext, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret", encoding="utf-8")
    bundle = write(plugin_context)
    (bundle / "link.txt").symlink_to(tmp_path / "outside.txt")
    manifest = manifest_of(bundle)
    sha256, size = file_digest(tmp_path / "outside.txt")
    manifest["files"].append({"path": "signed/link.txt", "sha256": sha256, "size": size})
    manifest["signature"] = sign_manifest(manifest, KEY.encode())
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    findings = verify_bundle(bundle, KEY.encode()).findings
    assert [(f.kind, f.path) for f in findings] == [("unsafe-path", "signed/link.txt")]
    assert "outside the folder" in findings[0].detail


def test_a_bundle_location_that_climbs_out_is_rejected(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    manifest = manifest_of(bundle)
    manifest["bundle"] = "../.."
    manifest["signature"] = sign_manifest(manifest, KEY.encode())
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert kinds(bundle) == [("unsafe-path", "../..")]


def test_an_unknown_algorithm_is_a_bad_signature(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context)
    manifest = manifest_of(bundle)
    manifest["algorithm"] = "md5"
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    findings = verify_bundle(bundle, KEY.encode()).findings
    assert [(f.kind, f.detail) for f in findings] == [("bad-signature", "unsupported algorithm 'md5'")]


def test_a_bundle_copied_elsewhere_reports_the_run_artifacts_it_left_behind(
    plugin_context: PluginContext, tmp_path: Path
) -> None:
    import shutil

    out = plugin_context.output_dir
    out.mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    bundle = write(plugin_context, files=["results.csv"])
    copy = tmp_path / "copy" / "signed"
    shutil.copytree(bundle, copy)
    assert kinds(copy) == [("missing", "results.csv")]


def test_no_manifest_is_bad_input(plugin_context: PluginContext, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json in .* nor in a bundle folder below it"):
        find_bundles(tmp_path)
    with pytest.raises(ManifestError, match=r"no manifest\.json in "):
        verify_bundle(tmp_path, b"k")


def test_find_bundles_finds_the_bundle_below_an_output_folder(plugin_context: PluginContext) -> None:
    bundle = write(plugin_context, path="a/b")
    (plugin_context.output_dir / "unrelated").mkdir()
    (plugin_context.output_dir / "unrelated" / "manifest.json").write_text("{}", encoding="utf-8")
    assert find_bundles(plugin_context.output_dir) == [bundle]
    assert find_bundles(bundle) == [bundle]


# --- the signed sink writes after the sinks whose files it signs ------------------------------------------------


def test_signed_listed_before_csv_still_signs_the_csv_and_tampering_is_found(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv, id_column: id}}
        orchestrator: rows
        sinks:
          - signed
          - {plugin: csv, options: {path: results.csv}}
        """,
        {"d.csv": "id,text\na,café\nb,tea\n"},
    )
    result = run_settings(path)
    out = path.parent / "output"
    bundle = out / "signed"
    assert [f["path"] for f in manifest_of(bundle)["files"]] == ["results.csv", *BUNDLE]
    written = [Path(a["path"]).name for a in result.metadata.to_dict()["artifacts"]]
    assert written[0] == "results.csv"  # written first, whatever the settings' order
    assert verify_bundle(bundle, KEY.encode()).ok
    (out / "results.csv").write_text("row_id,text\na,forged\n", encoding="utf-8")
    assert kinds(bundle) == [("tampered", "results.csv")]


def test_two_signed_sinks_keep_their_order_after_every_ordinary_sink(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv}}
        orchestrator: rows
        sinks:
          - {plugin: signed, options: {path: first}}
          - {plugin: jsonl, options: {path: results.jsonl}}
          - {plugin: signed, options: {path: second}}
        """,
        {"d.csv": "text\nx\ny\n"},
    )
    run_settings(path)
    out = path.parent / "output"
    first = [f["path"] for f in manifest_of(out / "first")["files"]]
    second = [f["path"] for f in manifest_of(out / "second")["files"]]
    assert "results.jsonl" in first
    assert "first/manifest.json" in second  # the second bundle signs the first, as listed
    assert "second/manifest.json" not in first
    assert verify_bundle(out / "first", KEY.encode()).ok
    assert verify_bundle(out / "second", KEY.encode()).ok


def test_a_remote_artifact_is_not_listed_and_is_named_in_a_warning(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    result = sample_run_result()
    url = "https://acct.blob.core.windows.net/results/run-first/results.jsonl"
    blob = Artifact(Path("results/run-first/results.jsonl"), "application/jsonl", "azure_blob", url)
    result.metadata.artifacts = [blob]
    bundle = write(plugin_context, result)
    assert [f["path"] for f in manifest_of(bundle)["files"]] == BUNDLE
    assert f"{url} is not a local file; it is not listed in the manifest" in caplog.text


# --- the security level is signed -------------------------------------------------------------------------------


def test_the_security_level_is_in_the_manifest_and_covered_by_the_signature(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        """
        security_level: PROTECTED
        datasource: {plugin: csv, options: {path: d.csv}}
        orchestrator: rows
        sinks:
          - {plugin: csv, security_level: PROTECTED, options: {path: results.csv}}
          - {plugin: signed, security_level: PROTECTED}
        """,
        {"d.csv": "text\nx\n"},
    )
    run_settings(path)
    bundle = path.parent / "output" / "signed"
    manifest = manifest_of(bundle)
    assert manifest["security_level"] == "PROTECTED"
    report = verify_bundle(bundle, KEY.encode())
    assert report.ok
    assert report.security_level == "PROTECTED"
    manifest["security_level"] = "UNOFFICIAL"  # downgrading the label is tampering with the manifest
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert kinds(bundle) == [("bad-signature", "signed/manifest.json")]


def test_the_level_comes_from_the_run_metadata_or_the_context(plugin_context: PluginContext) -> None:
    result = sample_run_result()
    result.metadata.security_level = "OFFICIAL_SENSITIVE"
    assert manifest_of(write(plugin_context, result, path="a"))["security_level"] == "OFFICIAL_SENSITIVE"
    plugin_context.security_level = "OFFICIAL"
    assert manifest_of(write(plugin_context, sample_run_result(), path="b"))["security_level"] == "OFFICIAL"


# --- files added beside signed files, outside the bundle folder -------------------------------------------------


def signed_with_results(plugin_context: PluginContext) -> tuple[Path, Path]:
    """A bundle signing ``output/results.csv`` and ``output/tables/by_group.csv``; returns (output, bundle)."""
    out = plugin_context.output_dir
    (out / "tables").mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    (out / "tables" / "by_group.csv").write_text("group\nx\n", encoding="utf-8")
    return out, write(plugin_context, files=["results.csv", "tables/by_group.csv"])


def test_a_file_added_beside_a_signed_file_is_named(plugin_context: PluginContext) -> None:
    out, bundle = signed_with_results(plugin_context)
    (out / "results-v2.csv").write_text("row_id\nforged\n", encoding="utf-8")
    (out / "tables" / "extra.csv").write_text("group\ny\n", encoding="utf-8")
    (out / "elsewhere").mkdir()
    (out / "elsewhere" / "notes.txt").write_text("not beside any signed file", encoding="utf-8")
    report = verify_bundle(bundle, KEY.encode())
    assert [(f.kind, f.path) for f in report.findings] == [("added", "results-v2.csv"), ("added", "tables/extra.csv")]
    assert report.findings[0].detail == "beside signed files but not listed in the manifest"


def test_databases_present_when_signing_are_ignored_with_their_journals_but_a_new_one_is_added(
    plugin_context: PluginContext,
) -> None:
    import sqlite3

    out = plugin_context.output_dir
    out.mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    with sqlite3.connect(out / "elspeth-runs.sqlite") as db:  # what the run store leaves in the output folder
        db.execute("create table runs (id text)")
    db.close()
    bundle = write(plugin_context, files=["results.csv"])
    assert manifest_of(bundle)["ignored"] == ["elspeth-runs.sqlite"]
    with sqlite3.connect(out / "elspeth-runs.sqlite") as db:  # the store changes after signing: not tampering
        db.execute("insert into runs values ('later')")
    db.close()
    (out / "elspeth-runs.sqlite-wal").write_bytes(b"wal")
    assert verify_bundle(bundle, KEY.encode()).ok
    with sqlite3.connect(out / "planted.sqlite") as db:
        db.execute("create table t (x)")
    db.close()
    assert kinds(bundle) == [("added", "planted.sqlite")]


def test_a_name_added_to_ignored_breaks_the_signature(plugin_context: PluginContext) -> None:
    out, bundle = signed_with_results(plugin_context)
    (out / "forged.csv").write_text("x\n", encoding="utf-8")
    manifest = manifest_of(bundle)
    manifest["ignored"].append("forged.csv")
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert kinds(bundle) == [("bad-signature", "signed/manifest.json")]


def test_signing_warns_about_files_that_verify_will_report(
    plugin_context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    out = plugin_context.output_dir
    out.mkdir(parents=True)
    (out / "results.csv").write_text("row_id\nx\n", encoding="utf-8")
    (out / "audit.jsonl").write_text("{}\n", encoding="utf-8")  # written by something that is not a sink
    bundle = write(plugin_context, files=["results.csv"])
    assert "audit.jsonl lie beside signed files but no sink of this run wrote them" in caplog.text
    assert "add them to `files` to sign them" in caplog.text
    assert kinds(bundle) == [("added", "audit.jsonl")]
