"""``elspeth verify DIR``: exit 0 when a signed bundle matches, 1 naming what does not, 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from elspeth import PluginContext, invoke
from elspeth.cli import app
from elspeth_signed import SignedSink
from elspeth_testing import run_async, sample_run_result
from elspeth_testing.plugin import ElspethCli, RunSettings, WriteSettings

KEY = "verify-key-0123456789abcdef0123456789abcdef"


@pytest.fixture
def bundle(plugin_context: PluginContext, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signed bundle in ``output/signed``, written with the key in ELSPETH_SIGNING_KEY."""
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)
    sink = SignedSink(SignedSink.Options())
    run_async(invoke(sink.write, sample_run_result(), plugin_context))
    return plugin_context.output_dir / "signed"


def verify(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["verify", *args], env=env)


def test_an_intact_bundle_verifies_from_its_folder_or_the_output_folder(bundle: Path) -> None:
    for folder in (bundle, bundle.parent):
        done = verify(str(folder))
        assert done.exit_code == 0, done.output
        assert "OK " in done.stdout
        assert "signed/manifest.json: signature and 4 files verified" in done.stdout
        level = sample_run_result().metadata.security_level or "UNOFFICIAL"
        assert f"(security level {level})" in done.stdout


def test_a_tampered_byte_is_named_and_exits_1(bundle: Path) -> None:
    data = bytearray((bundle / "records.jsonl").read_bytes())
    data[-2] ^= 0x20
    (bundle / "records.jsonl").write_bytes(bytes(data))
    done = verify(str(bundle))
    assert done.exit_code == 1
    assert "TAMPERED signed/records.jsonl: sha256" in done.stdout
    assert "FAILED" in done.stderr
    assert "1 tampered; 3 files verified" in done.stderr


def test_missing_and_added_files_are_each_named(bundle: Path) -> None:
    (bundle / "metadata.json").unlink()
    (bundle / "notes.txt").write_text("added later", encoding="utf-8")
    done = verify(str(bundle.parent))
    assert done.exit_code == 1
    assert done.stdout.splitlines() == [
        "MISSING signed/metadata.json: listed in the manifest but not found",
        "ADDED signed/notes.txt: in the bundle folder but not listed in the manifest",
    ]


def test_an_edited_manifest_is_a_bad_signature(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][0]["size"] += 1
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    done = verify(str(bundle))
    assert done.exit_code == 1
    assert done.stdout.splitlines()[0].startswith("BAD-SIGNATURE signed/manifest.json: the hmac-sha256 signature")
    assert "TAMPERED signed/aggregates.json" in done.stdout


def test_a_wrong_key_is_a_bad_signature(bundle: Path) -> None:
    done = verify(str(bundle), env={"ELSPETH_SIGNING_KEY": "guess"})
    assert done.exit_code == 1
    assert "BAD-SIGNATURE signed/manifest.json" in done.stdout
    assert "1 bad-signature; 4 files verified" in done.stderr


def test_key_env_names_another_variable(bundle: Path) -> None:
    done = verify(str(bundle), "--key-env", "OTHER_KEY", env={"ELSPETH_SIGNING_KEY": None, "OTHER_KEY": KEY})
    assert done.exit_code == 0, done.output


def test_a_missing_key_is_bad_input_and_says_how_to_fix_it(bundle: Path) -> None:
    done = verify(str(bundle), env={"ELSPETH_SIGNING_KEY": None})
    assert done.exit_code == 2
    assert "the signing key variable ELSPETH_SIGNING_KEY is not set" in done.stderr
    assert "pass --key-env NAME" in done.stderr
    done = verify(str(bundle), "--key-env", "EMPTY_KEY", env={"EMPTY_KEY": ""})
    assert done.exit_code == 2
    assert "EMPTY_KEY is empty" in done.stderr


def test_a_missing_manifest_is_bad_input(tmp_path: Path) -> None:
    done = verify(str(tmp_path), env={"ELSPETH_SIGNING_KEY": KEY})
    assert done.exit_code == 2
    assert f"error: no manifest.json in {tmp_path} nor in a bundle folder below it" in done.stderr


def test_a_folder_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    done = verify(str(tmp_path / "nope"), env={"ELSPETH_SIGNING_KEY": KEY})
    assert done.exit_code == 2
    assert "nope is not a folder" in done.stderr


def test_an_escaping_path_is_rejected(bundle: Path) -> None:
    from elspeth_signed.signing import sign_manifest

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"].append({"path": "../../../etc/passwd", "sha256": "0" * 64, "size": 1})
    manifest["signature"] = sign_manifest(manifest, KEY.encode())
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    done = verify(str(bundle))
    assert done.exit_code == 1
    assert "UNSAFE-PATH ../../../etc/passwd: rejected: the path climbs out of the folder with '..'" in done.stdout


def test_run_then_verify_in_a_subprocess(
    write_settings: WriteSettings,
    run_settings: RunSettings,
    elspeth_cli: ElspethCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the run is in-process (core alone has no orchestrator installed); verify is the real command
    settings = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv}}
        orchestrator: rows
        sinks:
          - {plugin: csv, options: {path: results.csv}}
          - {plugin: signed, options: {algorithm: hmac-sha512, key_env: MY_SIGNING_KEY}}
        """,
        {"d.csv": "text\nnaïve\ncafé\n"},
    )
    monkeypatch.setenv("MY_SIGNING_KEY", KEY)
    run_settings(settings)
    env = {"MY_SIGNING_KEY": KEY}
    done = elspeth_cli("verify", "output", "--key-env", "MY_SIGNING_KEY", env=env)
    assert done.returncode == 0, done.stderr
    assert "signature and 5 files verified" in done.stdout  # results.csv and the four bundle files
    (settings.parent / "output" / "results.csv").write_text("text\nforged\n", encoding="utf-8")
    done = elspeth_cli("verify", "output", "--key-env", "MY_SIGNING_KEY", env=env)
    assert done.returncode == 1
    assert "TAMPERED results.csv" in done.stdout
    assert elspeth_cli("verify", "output").returncode == 2  # no key in the environment


def test_signed_before_csv_in_the_settings_then_a_tampered_csv_fails_verify(
    write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)
    settings = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv}}
        orchestrator: rows
        sinks:
          - signed
          - {plugin: csv, options: {path: results.csv}}
        """,
        {"d.csv": "text\nnaïve\ncafé\n"},
    )
    run_settings(settings)
    out = settings.parent / "output"
    done = verify(str(out))
    assert done.exit_code == 0, done.output
    assert "signature and 5 files verified" in done.stdout
    (out / "results.csv").write_text("text\nforged\n", encoding="utf-8")
    done = verify(str(out))
    assert done.exit_code == 1
    assert "TAMPERED results.csv: sha256" in done.stdout
    assert "1 tampered; 4 files verified" in done.stderr


def test_a_file_added_beside_a_signed_csv_is_named_while_the_run_store_is_not(
    write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)
    settings = write_settings(
        """
        datasource: {plugin: csv, options: {path: d.csv}}
        orchestrator: rows
        sinks: [{plugin: csv, options: {path: results.csv}}, signed]
        """,
        {"d.csv": "text\nx\n"},
    )
    run_settings(settings)
    out = settings.parent / "output"
    assert (out / "elspeth-runs.sqlite").is_file()  # the run store, beside results.csv: not reported
    (out / "results-final.csv").write_text("text\nplanted\n", encoding="utf-8")
    done = verify(str(out))
    assert done.exit_code == 1
    assert done.stdout.splitlines() == [
        "ADDED results-final.csv: beside signed files but not listed in the manifest",
    ]
    assert "1 added; 5 files verified" in done.stderr
