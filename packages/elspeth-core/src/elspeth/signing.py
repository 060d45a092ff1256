"""Signed manifests: build them over a set of files, and verify them later.

A *bundle* is a folder holding ``manifest.json``. The manifest lists files with their SHA-256 and
size, by POSIX paths relative to a *root* folder (the run's output folder), and carries an HMAC over
itself so that neither the files nor the list can be changed without the key.

Manifest layout (every value a string, an integer, a list or an object; no floats)::

    {
      "format": "elspeth-signed-manifest/1",
      "algorithm": "hmac-sha256",            # or "hmac-sha512"
      "key_env": "ELSPETH_SIGNING_KEY",      # informational only: verify never reads the name from here
      "run_id": "...", "name": "...", "created_at": "2025-01-01T00:00:00+00:00",
      "bundle": "signed",                    # the bundle folder, relative to the root ("." if it is the root)
      "files": [{"path": "signed/records.jsonl", "sha256": "<hex>", "size": 123}, ...],  # sorted by path
      "signature": "<hex>"
    }

**Exactly which bytes are signed.** The HMAC (keyed with the UTF-8 bytes of the environment
variable's value, digest SHA-256 or SHA-512 as ``algorithm`` says) is computed over
:func:`canonical_bytes` of the manifest object *without* its ``signature`` member, that is
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")``:
members sorted by key, no whitespace, non-ASCII characters written as themselves in UTF-8. Because
the manifest holds only ASCII keys, strings and integers, these are also its RFC 8785 (JCS) bytes, so
any language can recompute them. The signature is written as lowercase hex. How ``manifest.json`` is
laid out on disk (indentation) does not matter; its parsed content does.

Example::

    from elspeth.signing import build_manifest, verify_bundle, signing_key

    key = signing_key("ELSPETH_SIGNING_KEY")
    manifest = build_manifest(root, root / "signed", [root / "signed" / "records.jsonl"], key=key)
    report = verify_bundle(root / "signed", key)
    assert report.ok
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from elspeth.errors import ElspethError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_KEY_ENV",
    "FORMAT",
    "MANIFEST_NAME",
    "Finding",
    "ManifestError",
    "SigningKeyError",
    "VerifyReport",
    "build_manifest",
    "canonical_bytes",
    "file_digest",
    "find_bundles",
    "sign_manifest",
    "signing_key",
    "verify_bundle",
]

FORMAT = "elspeth-signed-manifest/1"
MANIFEST_NAME = "manifest.json"
DEFAULT_KEY_ENV = "ELSPETH_SIGNING_KEY"
ALGORITHMS: Mapping[str, str] = {"hmac-sha256": "sha256", "hmac-sha512": "sha512"}
"""Signature algorithm name to the :mod:`hashlib` digest it uses."""

Algorithm = Literal["hmac-sha256", "hmac-sha512"]


class SigningKeyError(ElspethError):
    """The signing key is missing or empty (exit code 2)."""


class ManifestError(ElspethError):
    """There is no manifest where one was expected, or it is not an Elspeth manifest (exit code 2)."""


def signing_key(env: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The signing key: the UTF-8 bytes of the environment variable ``env``.

    Raises:
        SigningKeyError: the variable is unset or empty; the message names it and never holds a value.

    """
    value = (os.environ if environ is None else environ).get(env, "")
    if not value:
        state = "is empty" if env in (os.environ if environ is None else environ) else "is not set"
        raise SigningKeyError(
            f"the signing key variable {env} {state}: set it to the signing secret (a long random string) "
            "(keys come only from the environment, never from a settings file)"
        )
    return value.encode("utf-8")


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of the file's bytes on disk, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC covers: the manifest without ``signature``, as sorted, compact UTF-8 JSON."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sign_manifest(manifest: Mapping[str, Any], key: bytes) -> str:
    """The hex HMAC of :func:`canonical_bytes` of ``manifest``, with the digest its ``algorithm`` names.

    Raises:
        ManifestError: ``algorithm`` is not one of :data:`ALGORITHMS`.

    """
    algorithm = manifest.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ManifestError(f"unsupported algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    return hmac.new(key, canonical_bytes(manifest), ALGORITHMS[algorithm]).hexdigest()


def _relative(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ElspethError(
            f"{path} lies outside the output folder {root}; a manifest can only list files inside it"
        ) from None


def build_manifest(
    root: Path,
    bundle: Path,
    files: Iterable[Path],
    *,
    key: bytes,
    algorithm: Algorithm = "hmac-sha256",
    key_env: str = DEFAULT_KEY_ENV,
    run_id: str = "",
    name: str = "",
) -> dict[str, Any]:
    """A signed manifest over ``files``, hashed from their bytes on disk now.

    Args:
        root: the folder every listed path is relative to (the run's output folder).
        bundle: the folder the manifest will be written to; must be ``root`` or inside it.
        files: the files to list; each must exist inside ``root``. Duplicates are listed once.
        key: the HMAC key.
        algorithm: ``hmac-sha256`` or ``hmac-sha512``.
        key_env: the name of the key's environment variable, recorded as a hint for whoever verifies.
        run_id: the run's id, recorded.
        name: the run's name, recorded.

    Raises:
        ElspethError: a file is outside ``root`` or is not a file.

    """
    entries: dict[str, dict[str, Any]] = {}
    for path in files:
        rel = _relative(root, path)
        if not path.is_file():
            raise ElspethError(f"{path} is not a file; it cannot be listed in the manifest")
        sha256, size = file_digest(path)
        entries[rel] = {"path": rel, "sha256": sha256, "size": size}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "algorithm": algorithm,
        "key_env": key_env,
        "run_id": run_id,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bundle": _relative(root, bundle) if bundle.resolve() != root.resolve() else ".",
        "files": [entries[k] for k in sorted(entries)],
    }
    manifest["signature"] = sign_manifest(manifest, key)
    return manifest


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
        checked: paths whose hash and size matched.
        findings: every problem, in a stable order (signature first, then by path).

    """

    manifest: Path
    root: Path
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


def _load(manifest_path: Path) -> dict[str, Any]:
    if not manifest_path.is_file():
        raise ManifestError(f"no {MANIFEST_NAME} in {manifest_path.parent}")
    try:
        doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f'{manifest_path} is not an Elspeth signed manifest (no "format": "{FORMAT}")')
    if not isinstance(doc.get("files"), list) or not isinstance(doc.get("signature"), str):
        raise ManifestError(f"{manifest_path} lacks its 'files' list or its 'signature'")
    return doc


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


def _check_signature(doc: dict[str, Any], key: bytes, where: str) -> Finding | None:
    if doc.get("algorithm") not in ALGORITHMS:
        return Finding("bad-signature", where, f"unsupported algorithm {doc.get('algorithm')!r}")
    if not hmac.compare_digest(sign_manifest(doc, key), str(doc["signature"])):
        return Finding(
            "bad-signature",
            where,
            f"the {doc['algorithm']} signature does not match: the manifest was changed, or signed with another key",
        )
    return None


def _bundle_files(bundle_dir: Path, root: Path) -> set[str]:
    found = set()
    for path in bundle_dir.rglob("*"):
        if path.is_file() and not (path.parent == bundle_dir and path.name == MANIFEST_NAME):
            found.add(path.relative_to(root).as_posix())
    return found


def verify_bundle(bundle_dir: Path, key: bytes) -> VerifyReport:
    """Check the manifest in ``bundle_dir``: its signature, every listed file, and files added to the bundle.

    A listed path that is absolute or climbs out with ``..`` is reported as ``unsafe-path`` and never
    opened. A file found in the bundle folder (or below it) that the manifest does not list is
    ``added``; files elsewhere under the root are not the bundle's business.

    Raises:
        ManifestError: there is no manifest, or it is not an Elspeth signed manifest.

    """
    bundle_dir = Path(bundle_dir).absolute()
    manifest_path = bundle_dir / MANIFEST_NAME
    doc = _load(manifest_path)
    root, why = _root_of(bundle_dir, doc.get("bundle"))
    report = VerifyReport(manifest_path, root or bundle_dir)
    where = MANIFEST_NAME if root is None else (manifest_path.relative_to(root).as_posix())
    signature = _check_signature(doc, key, where)
    if signature is not None:
        report.findings.append(signature)
    if root is None:
        report.findings.append(Finding("unsafe-path", str(doc.get("bundle")), f"the bundle location {why}"))
        return report
    resolved_root = root.resolve()
    listed: set[str] = set()
    problems: list[Finding] = []
    for entry in doc["files"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        listed.add(str(rel))  # an unsafe entry is reported once, as unsafe, not also as added
        why = _unsafe(rel)
        target = root / str(rel)
        if why is None and not target.resolve().is_relative_to(resolved_root):
            why = "resolves outside the folder (through a link)"
        if why is not None:
            problems.append(Finding("unsafe-path", str(rel), f"rejected: the path {why}"))
            continue
        assert isinstance(entry, dict)
        assert isinstance(rel, str)
        if not target.is_file():
            problems.append(Finding("missing", rel, "listed in the manifest but not found"))
            continue
        sha256, size = file_digest(target)
        if sha256 != entry.get("sha256") or size != entry.get("size"):
            problems.append(
                Finding(
                    "tampered",
                    rel,
                    f"sha256 {sha256[:16]}… and size {size} on disk, "
                    f"manifest says {str(entry.get('sha256'))[:16]}… and size {entry.get('size')}",
                )
            )
            continue
        report.checked.append(rel)
    for rel in sorted(_bundle_files(bundle_dir, root) - listed):
        problems.append(Finding("added", rel, "in the bundle folder but not listed in the manifest"))
    report.findings.extend(sorted(problems, key=lambda f: (f.path, f.kind)))
    return report


def find_bundles(folder: Path) -> list[Path]:
    """Bundle folders at or below ``folder``.

    That is ``folder`` itself if it holds a manifest, else every folder below it holding an Elspeth
    manifest whose ``bundle`` matches where it lies.

    Raises:
        ManifestError: there is no such folder, or none holds a manifest.

    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a folder")
    if (folder / MANIFEST_NAME).is_file():
        return [folder]
    found = []
    for manifest in sorted(folder.rglob(MANIFEST_NAME)):
        try:
            doc = _load(manifest)
        except ManifestError:
            continue
        if doc.get("bundle") == manifest.parent.relative_to(folder).as_posix():
            found.append(manifest.parent)
    if not found:
        raise ManifestError(
            f"no {MANIFEST_NAME} in {folder} nor in a bundle folder below it; pass the signed bundle's folder"
        )
    return found
