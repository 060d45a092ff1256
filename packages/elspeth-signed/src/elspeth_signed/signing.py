"""Signed manifests: build them over a set of files, and verify them later.

A *bundle* is a folder holding ``manifest.json``. The manifest lists files with their SHA-256 and
size, by POSIX paths relative to a *root* folder (the run's output folder), and carries an HMAC over
itself so that neither the files nor the list can be changed without the key.

**Covered folders.** The bundle folder (with its subfolders) and every folder that holds a listed
file are *covered*: a file found there that the manifest does not list is reported as added. Two
kinds of file are not: the bundle's own ``manifest.json``, and the SQLite databases (the run store,
a response cache, a retrieval index) that lay in a covered folder when the manifest was signed. Those
change after the run, so they cannot be hashed; the manifest names them under ``ignored`` (signed
like the rest, so nobody can add a name there), and their ``-wal``, ``-shm`` and ``-journal`` files
are passed over with them.

Manifest layout (every value a string, an integer, a list or an object; no floats)::

    {
      "format": "elspeth-signed-manifest/1",
      "algorithm": "hmac-sha256",            # or "hmac-sha512"
      "key_env": "ELSPETH_SIGNING_KEY",      # informational only: verify never reads the name from here
      "run_id": "...", "name": "...", "created_at": "2025-01-01T00:00:00+00:00",
      "security_level": "OFFICIAL",          # the data's level (UNOFFICIAL ... SECRET), signed with the rest
      "bundle": "signed",                    # the bundle folder, relative to the root ("." if it is the root)
      "files": [{"path": "signed/records.jsonl", "sha256": "<hex>", "size": 123}, ...],  # sorted by path
      "ignored": ["elspeth-runs.sqlite"],    # databases beside listed files, not hashed (see above); sorted
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

    from elspeth_signed import build_manifest, signing_key, verify_bundle

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
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from elspeth import ElspethError, register_secret

__all__ = [
    "ALGORITHMS",
    "DEFAULT_KEY_ENV",
    "FORMAT",
    "MANIFEST_NAME",
    "ManifestError",
    "SigningKeyError",
    "build_manifest",
    "canonical_bytes",
    "file_digest",
    "ignored_by",
    "is_database",
    "sign_manifest",
    "signing_key",
    "unlisted_beside",
]

FORMAT = "elspeth-signed-manifest/1"
MANIFEST_NAME = "manifest.json"
DEFAULT_KEY_ENV = "ELSPETH_SIGNING_KEY"
ALGORITHMS: Mapping[str, str] = {"hmac-sha256": "sha256", "hmac-sha512": "sha512"}
"""Signature algorithm name to the :mod:`hashlib` digest it uses."""

Algorithm = Literal["hmac-sha256", "hmac-sha512"]
_SQLITE_HEADER = b"SQLite format 3\x00"
_SIDECARS = ("-wal", "-shm", "-journal")


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
    register_secret(value, env)  # scrubbed from every message from now on
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


def is_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite database file (by its first 16 bytes)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def ignored_by(rel: str, ignored: Collection[str]) -> bool:
    """Whether ``rel`` is one of the ``ignored`` databases, or one of their -wal, -shm or -journal files."""
    return rel in ignored or any(rel.endswith(s) and rel.removesuffix(s) in ignored for s in _SIDECARS)


def unlisted_beside(root: Path, bundle: Path, listed: Iterable[str]) -> list[str]:
    """Files (relative to ``root``) in a folder holding a listed file, outside ``bundle``, that are not listed.

    Only the folders' own files are looked at, not their subfolders; the bundle folder is checked
    separately, subfolders and all. Sorted.
    """
    rels = set(listed)
    bundle = bundle.absolute()
    folders = {(root / rel).parent for rel in rels}
    found: set[str] = set()
    for folder in folders:
        if not folder.is_dir() or folder == bundle or folder.is_relative_to(bundle):
            continue
        for path in folder.iterdir():
            rel = path.relative_to(root).as_posix()
            if rel not in rels and path.is_file():
                found.add(rel)
    return sorted(found)


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
    security_level: str = "UNOFFICIAL",
) -> dict[str, Any]:
    """A signed manifest over ``files``, hashed from their bytes on disk now.

    SQLite databases lying beside the files (see *Covered folders* above) are named under ``ignored``.

    Args:
        root: the folder every listed path is relative to (the run's output folder).
        bundle: the folder the manifest will be written to; must be ``root`` or inside it.
        files: the files to list; each must exist inside ``root``. Duplicates are listed once.
        key: the HMAC key.
        algorithm: ``hmac-sha256`` or ``hmac-sha512``.
        key_env: the name of the key's environment variable, recorded as a hint for whoever verifies.
        run_id: the run's id, recorded.
        name: the run's name, recorded.
        security_level: the data's security level, recorded and signed.

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
    root = root.resolve()
    beside = unlisted_beside(root, bundle.resolve(), entries)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "algorithm": algorithm,
        "key_env": key_env,
        "run_id": run_id,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "security_level": security_level,
        "bundle": _relative(root, bundle) if bundle.resolve() != root else ".",
        "files": [entries[k] for k in sorted(entries)],
        "ignored": [rel for rel in beside if is_database(root / rel)],
    }
    manifest["signature"] = sign_manifest(manifest, key)
    return manifest
