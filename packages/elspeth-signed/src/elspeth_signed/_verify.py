"""``elspeth verify``: check a signed bundle's manifest, signature and files."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from elspeth_signed.signing import DEFAULT_KEY_ENV, SigningKeyError, signing_key
from elspeth_signed.verifying import find_bundles, verify_bundle


def _key(key_env: str | None) -> bytes:
    name = key_env or DEFAULT_KEY_ENV
    try:
        return signing_key(name)
    except SigningKeyError as exc:
        hint = "" if key_env else "; pass --key-env NAME if the key is in another variable"
        raise SigningKeyError(f"{exc}{hint}") from None


def verify_command(folder: Path, key_env: str | None) -> int:
    """Verify every bundle at or below ``folder``; print one line per problem; return the exit code.

    Returns:
        0 when every bundle verifies, 1 when any file or signature does not.

    Raises:
        ManifestError: no manifest found (exit 2).
        SigningKeyError: no key in the environment (exit 2).

    """
    bundles = find_bundles(folder)
    key = _key(key_env)
    failed = 0
    for bundle in bundles:
        report = verify_bundle(bundle, key)
        shown = os.path.relpath(report.manifest)
        for finding in report.findings:
            typer.echo(str(finding))
        if report.ok:
            level = f" (security level {report.security_level})" if report.security_level else ""
            typer.echo(f"OK {shown}: signature and {len(report.checked)} files verified{level}")
            continue
        failed += 1
        kinds: dict[str, int] = {}
        for finding in report.findings:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        typer.echo(f"FAILED {shown}: {counts}; {len(report.checked)} files verified", err=True)
    return 1 if failed else 0
