"""Verifying a signed bundle: its signature, every listed file, and files added beside them.

Whatever a manifest holds, verification reports it as findings and never raises on it: a manifest
that claims the Elspeth format but has a field of the wrong shape (no signature, a signature that is
not hex, ``files`` that is not a list, an entry that is not an object, a value JSON cannot sign) is
``BAD-SIGNATURE`` or ``TAMPERED`` naming the field. A ``manifest.json`` that is not JSON, not an
object, or has another ``format`` is ``TAMPERED`` too (a bundle's manifest that no longer reads as
one was changed). Only "there is no manifest" is bad input (:class:`ManifestError`).
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from elspeth_signed.signing import (
    ALGORITHMS,
    FORMAT,
    MANIFEST_NAME,
    ManifestError,
    file_digest,
    ignored_by,
    sign_manifest,
    unlisted_beside,
)

__all__ = ["Finding", "VerifyReport", "find_bundles", "verify_bundle"]

_HEX_LENGTH = {"hmac-sha256": 64, "hmac-sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong.

    Attributes:
        kind: ``tampered``, ``missing``, ``added``, ``unsafe-path`` or ``bad-signature``.
        path: the file concerned, relative to the root (``manifest.json`` path for a bad signature).
        detail: what differs, in words.

    """

    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.upper()} {self.path}: {self.detail}"


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_bundle`.

    Attributes:
        manifest: the manifest file checked.
        root: the folder the manifest's paths are relative to.
        security_level: the level the manifest records (None for a manifest without one); trust it
            only when the signature verified.
        checked: paths whose hash and size matched.
        findings: every problem, in a stable order (signature first, then by path).

    """

    manifest: Path
    root: Path
    security_level: str | None = None
    checked: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the signature and every file match and nothing was added."""
        return not self.findings


def _unsafe(rel: object) -> str | None:
    """Why ``rel`` may not be used as a path inside the root, or None if it is safe."""
    if not isinstance(rel, str) or not rel:
        return "not a non-empty string"
    if "\\" in rel or "\x00" in rel:
        return "holds a backslash or NUL character"
    pure = PurePosixPath(rel)
    if pure.is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        return "is absolute"
    if ".." in pure.parts:
        return "climbs out of the folder with '..'"
    return None


def _read(manifest_path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest as an object whose ``format`` is Elspeth's, or None and what is wrong with it."""
    if not manifest_path.is_file():
        raise ManifestError(f"no {MANIFEST_NAME} in {manifest_path.parent}")
    try:
        doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"the manifest is not UTF-8 ({exc.reason} at byte {exc.start}): it was changed"
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return None, f"the manifest is not valid JSON ({exc.msg} at {where}): it was changed"
    if not isinstance(doc, dict):
        return None, f"the manifest is a JSON {type(doc).__name__}, not an object: it was changed"
    if doc.get("format") != FORMAT:
        shown = repr(doc.get("format"))[:40] if "format" in doc else "missing"
        return None, f"field 'format' is {shown}, not {FORMAT!r}: it was changed, or this is not an Elspeth manifest"
    return doc, None


def _root_of(bundle_dir: Path, bundle: object) -> tuple[Path | None, str | None]:
    """The root folder, climbing out of ``bundle_dir`` once per part of the manifest's ``bundle``."""
    if bundle == ".":
        return bundle_dir, None
    why = _unsafe(bundle)
    if why is not None:
        return None, why
    root = bundle_dir
    for _ in PurePosixPath(str(bundle)).parts:
        root = root.parent
    return root, None


def _signature_problem(doc: dict[str, Any], key: bytes) -> str | None:
    """What is wrong with the manifest's ``algorithm`` or ``signature`` field, or None if the signature holds."""
    algorithm, signature = doc.get("algorithm"), doc.get("signature")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        return f"unsupported algorithm {algorithm!r}"
    if "signature" not in doc:
        return "field 'signature' is missing: the manifest is not signed"
    length = _HEX_LENGTH[algorithm]
    if not isinstance(signature, str) or len(signature) != length or not _HEX.fullmatch(signature):
        shown = repr(signature)[:40]
        return f"field 'signature' is not {length} lowercase hex characters ({shown}): it was changed"
    try:
        expected = sign_manifest(doc, key)
    except (ValueError, TypeError) as exc:  # NaN or Infinity, which json.loads accepts and JSON cannot sign
        return f"the manifest holds a value that cannot be signed ({exc}): it was changed"
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        return f"the {algorithm} signature does not match: the manifest was changed, or signed with another key"
    return None


def _bundle_files(bundle_dir: Path, root: Path) -> set[str]:
    found = set()
    for path in bundle_dir.rglob("*"):
        if path.is_file() and not (path.parent == bundle_dir and path.name == MANIFEST_NAME):
            found.add(path.relative_to(root).as_posix())
    return found


def _check_entry(index: int, entry: object, root: Path, where: str, report: VerifyReport) -> str | None:
    """Check one ``files`` entry; add what is wrong to ``report``; the entry's path if it is safe to use."""
    if not isinstance(entry, dict):
        report.findings.append(Finding("tampered", where, f"field 'files[{index}]' is not an object"))
        return None
    rel = entry.get("path")
    why = _unsafe(rel)
    target = root / str(rel)
    if why is None and not target.resolve().is_relative_to(root.resolve()):
        why = "resolves outside the folder (through a link)"
    if why is not None or not isinstance(rel, str):
        report.findings.append(Finding("unsafe-path", str(rel), f"rejected: the path {why}"))
        return None
    if not target.is_file():
        report.findings.append(Finding("missing", rel, "listed in the manifest but not found"))
        return rel
    sha256, size = file_digest(target)
    if sha256 != entry.get("sha256") or size != entry.get("size"):
        said = f"manifest says {str(entry.get('sha256'))[:16]}… and size {entry.get('size')}"
        report.findings.append(Finding("tampered", rel, f"sha256 {sha256[:16]}… and size {size} on disk, {said}"))
        return rel
    report.checked.append(rel)
    return rel


def _check_files(doc: dict[str, Any], bundle_dir: Path, root: Path, where: str, report: VerifyReport) -> None:
    entries, raw_ignored = doc.get("files"), doc.get("ignored", [])
    if not isinstance(entries, list):
        report.findings.append(Finding("tampered", where, "field 'files' is not a list: nothing can be checked"))
        return
    listed = {str(e.get("path")) if isinstance(e, dict) else "" for e in entries}  # an unsafe one is not also added
    safe = {rel for i, e in enumerate(entries) if (rel := _check_entry(i, e, root, where, report)) is not None}
    for rel in sorted(_bundle_files(bundle_dir, root) - listed):
        report.findings.append(Finding("added", rel, "in the bundle folder but not listed in the manifest"))
    if not isinstance(raw_ignored, list) or not all(isinstance(i, str) for i in raw_ignored):
        report.findings.append(Finding("tampered", where, "field 'ignored' is not a list of paths"))
        raw_ignored = []
    for rel in unlisted_beside(root, bundle_dir, safe):
        if not ignored_by(rel, set(raw_ignored)):
            report.findings.append(Finding("added", rel, "beside signed files but not listed in the manifest"))


def verify_bundle(bundle_dir: Path, key: bytes) -> VerifyReport:
    """Check the manifest in ``bundle_dir``: its signature, every listed file, and files added beside them.

    A listed path that is absolute or climbs out with ``..`` is reported as ``unsafe-path`` and never
    opened. A file the manifest does not list is ``added`` if it is in the bundle folder (or below
    it), or directly in a folder that holds a listed file, unless the manifest names it under
    ``ignored`` (see *Covered folders* in :mod:`elspeth_signed.signing`). Files in other folders are
    not the bundle's business. A malformed field is a finding naming it (see the module's docstring).

    Raises:
        ManifestError: there is no manifest.

    """
    bundle_dir = Path(bundle_dir).absolute()
    manifest_path = bundle_dir / MANIFEST_NAME
    doc, unreadable = _read(manifest_path)
    if doc is None:
        report = VerifyReport(manifest_path, bundle_dir, None)
        report.findings = [Finding("tampered", MANIFEST_NAME, str(unreadable))]
        return report
    root, why = _root_of(bundle_dir, doc.get("bundle"))
    level = doc.get("security_level")
    report = VerifyReport(manifest_path, root or bundle_dir, str(level) if level is not None else None)
    where = MANIFEST_NAME if root is None else manifest_path.relative_to(root).as_posix()
    problem = _signature_problem(doc, key)
    signature = [] if problem is None else [Finding("bad-signature", where, problem)]
    if not isinstance(doc.get("bundle"), str):
        report.findings = [*signature, Finding("tampered", where, "field 'bundle' is missing or not a string")]
        return report
    if root is None:
        report.findings = [*signature, Finding("unsafe-path", str(doc.get("bundle")), f"the bundle location {why}")]
        return report
    _check_files(doc, bundle_dir, root, where, report)
    report.findings = signature + sorted(report.findings, key=lambda f: (f.path, f.kind))
    return report


def _claims_elspeth(manifest: Path) -> bool:
    return _read(manifest)[0] is not None


def _is_json(manifest: Path) -> bool:
    try:
        json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def find_bundles(folder: Path) -> list[Path]:
    """Bundle folders at or below ``folder``.

    That is ``folder`` itself if it holds an Elspeth manifest, else every folder below it holding an
    Elspeth manifest whose ``bundle`` matches where it lies (signed or not: verify says what is wrong).
    When there is none, every folder below holding a ``manifest.json`` that is not JSON at all: a
    bundle whose manifest was damaged, which verify reports as tampered.

    Raises:
        ManifestError: there is no such folder, or none holds a manifest.

    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a folder")
    top = folder / MANIFEST_NAME
    if top.is_file() and _claims_elspeth(top):
        return [folder]
    found = []
    for manifest in sorted(folder.rglob(MANIFEST_NAME)):
        if manifest != top:
            doc, _ = _read(manifest)
            if doc is not None and doc.get("bundle") == manifest.parent.relative_to(folder).as_posix():
                found.append(manifest.parent)
    if not found and top.is_file():
        return [folder]  # its own manifest is not an Elspeth one: verify_bundle says so
    if not found:  # a manifest that no longer reads as JSON is a damaged bundle, not "no manifest"
        found = [m.parent for m in sorted(folder.rglob(MANIFEST_NAME)) if not _is_json(m)]
    if not found:
        raise ManifestError(
            f"no {MANIFEST_NAME} in {folder} nor in a bundle folder below it; pass the signed bundle's folder"
        )
    return found
