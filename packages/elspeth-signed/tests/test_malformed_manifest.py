"""A malformed manifest or signature is BAD-SIGNATURE or TAMPERED naming the field: no crash, no "no manifest"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from elspeth import PluginContext, invoke
from elspeth.cli import app
from elspeth_signed import SignedSink, find_bundles, sign_manifest, verify_bundle
from elspeth_testing import run_async, sample_run_result

KEY = "malformed-key-0123456789abcdef0123456789abcdef"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def bundle(plugin_context: PluginContext, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ELSPETH_SIGNING_KEY", KEY)
    run_async(invoke(SignedSink(SignedSink.Options()).write, sample_run_result(), plugin_context))
    return plugin_context.output_dir / "signed"


def rewrite(bundle: Path, edit: Edit, *, resign: bool = False, raw: str | None = None) -> None:
    path = bundle / "manifest.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    if resign:
        doc["signature"] = sign_manifest(doc, KEY.encode())
    path.write_text(raw if raw is not None else json.dumps(doc), encoding="utf-8")


def verify(folder: Path) -> Any:
    return CliRunner().invoke(app, ["verify", str(folder)], env={"ELSPETH_SIGNING_KEY": KEY})


def drop(name: str) -> Edit:
    return lambda doc: doc.pop(name)


def put(name: str, value: object) -> Edit:
    return lambda doc: doc.__setitem__(name, value)


SIGNATURE_CASES = {
    "removed": (drop("signature"), "field 'signature' is missing: the manifest is not signed"),
    "non-ascii": (put("signature", "é" * 64), "field 'signature' is not 64 lowercase hex characters ('" + "é" * 38),
    "a number": (put("signature", 12345), "field 'signature' is not 64 lowercase hex characters (12345)"),
    "null": (put("signature", None), "field 'signature' is not 64 lowercase hex characters (None)"),
    "upper-case hex": (lambda d: d.__setitem__("signature", d["signature"].upper()), "field 'signature' is not 64"),
    "too short": (lambda d: d.__setitem__("signature", d["signature"][:-2]), "field 'signature' is not 64"),
    "algorithm removed": (drop("algorithm"), "unsupported algorithm None"),
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_CASES))
def test_a_malformed_signature_is_a_bad_signature_naming_the_field(bundle: Path, case: str) -> None:
    edit, detail = SIGNATURE_CASES[case]
    rewrite(bundle, edit)
    (finding,) = verify_bundle(bundle, KEY.encode()).findings
    assert (finding.kind, finding.path) == ("bad-signature", "signed/manifest.json")
    assert finding.detail.startswith(detail), finding.detail
    for folder in (bundle, bundle.parent):  # found from the output folder too: not "no manifest"
        done = verify(folder)
        assert done.exit_code == 1, done.output
        assert done.stdout.startswith(f"BAD-SIGNATURE signed/manifest.json: {detail}")
        assert done.stderr.startswith("FAILED ")
        assert "signed/manifest.json: 1 bad-signature; 4 files verified" in done.stderr
        assert "Traceback" not in done.output


FIELD_CASES = {
    "files not a list": (put("files", {"path": "x"}), "field 'files' is not a list: nothing can be checked"),
    "an entry not an object": (lambda d: d["files"].__setitem__(0, "signed/aggregates.json"), "field 'files[0]'"),
    "ignored not a list": (put("ignored", "elspeth-runs.sqlite"), "field 'ignored' is not a list of paths"),
    "ignored holding a number": (put("ignored", [1]), "field 'ignored' is not a list of paths"),
    "bundle removed": (drop("bundle"), "field 'bundle' is missing or not a string"),
}


@pytest.mark.parametrize("case", sorted(FIELD_CASES))
@pytest.mark.parametrize("resigned", [False, True], ids=["changed", "re-signed with the key"])
def test_a_malformed_field_is_tampered_naming_it(bundle: Path, case: str, resigned: bool) -> None:
    edit, detail = FIELD_CASES[case]
    rewrite(bundle, edit, resign=resigned)
    findings = verify_bundle(bundle, KEY.encode()).findings
    where = "manifest.json" if case == "bundle removed" else "signed/manifest.json"
    assert [(f.kind, f.path) for f in findings if f.detail.startswith(detail)] == [("tampered", where)], findings
    assert [f.kind for f in findings if f.kind == "bad-signature"] == ([] if resigned else ["bad-signature"])
    done = verify(bundle)
    assert done.exit_code == 1, done.output
    assert f"TAMPERED {where}: {detail}" in done.stdout
    assert "Traceback" not in done.output


def test_a_value_json_cannot_sign_is_a_bad_signature(bundle: Path) -> None:
    rewrite(bundle, put("name", "placeholder"), raw=None)
    text = (bundle / "manifest.json").read_text(encoding="utf-8").replace('"placeholder"', "NaN")
    (bundle / "manifest.json").write_text(text, encoding="utf-8")
    (finding,) = verify_bundle(bundle, KEY.encode()).findings
    assert finding.kind == "bad-signature"
    assert finding.detail.startswith("the manifest holds a value that cannot be signed")
    assert verify(bundle.parent).exit_code == 1


def test_an_unsigned_manifest_below_an_output_folder_is_still_found(bundle: Path) -> None:
    rewrite(bundle, drop("signature"))
    assert find_bundles(bundle.parent) == [bundle]


UNREADABLE_CASES = {
    "not JSON": (b"{not json", "the manifest is not valid JSON (Expecting property name enclosed in double quotes"),
    "not UTF-8": (b'{"format": "\xff"}', "the manifest is not UTF-8 (invalid start byte at byte 12)"),
    "a list": (b"[]", "the manifest is a JSON list, not an object"),
    "format removed": (b'{"files": []}', "field 'format' is missing, not 'elspeth-signed-manifest/1'"),
    "another format": (b'{"format": "x/2"}', "field 'format' is 'x/2', not 'elspeth-signed-manifest/1'"),
    "empty": (b"", "the manifest is not valid JSON (Expecting value at line 1 column 1)"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_CASES))
def test_a_manifest_that_no_longer_reads_as_one_is_tampered(bundle: Path, case: str) -> None:
    raw, detail = UNREADABLE_CASES[case]
    (bundle / "manifest.json").write_bytes(raw)
    (finding,) = verify_bundle(bundle, KEY.encode()).findings
    assert (finding.kind, finding.path) == ("tampered", "manifest.json")
    assert finding.detail.startswith(detail), finding.detail
    done = verify(bundle)
    assert done.exit_code == 1, done.output
    assert done.stdout.startswith(f"TAMPERED manifest.json: {detail}")
    assert "FAILED " in done.stderr
    assert "no manifest" not in done.output
    assert "Traceback" not in done.output


def test_a_damaged_manifest_below_the_output_folder_is_found_not_missing(bundle: Path) -> None:
    (bundle / "manifest.json").write_bytes(b"{truncat")
    assert find_bundles(bundle.parent) == [bundle]
    done = verify(bundle.parent)
    assert done.exit_code == 1, done.output
    assert "TAMPERED manifest.json: the manifest is not valid JSON" in done.stdout
