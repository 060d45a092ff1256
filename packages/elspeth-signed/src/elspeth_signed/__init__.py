"""Elspeth's signed bundles: the ``signed`` sink and ``elspeth verify``.

The sink writes a run's results into a bundle folder with a ``manifest.json`` listing every file of
the run with its SHA-256, signed with an HMAC (key from the environment); ``elspeth verify DIR``
names every tampered, missing or added file. To check a bundle from Python::

    from elspeth_signed import signing_key, verify_bundle

    report = verify_bundle(Path("output/signed"), signing_key("ELSPETH_SIGNING_KEY"))
    assert report.ok, [str(f) for f in report.findings]

Names load on first use, so that the CLI's import of :mod:`elspeth_signed.commands` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_signed.signing import ManifestError, SigningKeyError, build_manifest, sign_manifest, signing_key
    from elspeth_signed.sink import SignedSink
    from elspeth_signed.verifying import Finding, VerifyReport, find_bundles, verify_bundle

__version__ = "0.1.0"

_LAZY = {
    "Finding": "elspeth_signed.verifying",
    "ManifestError": "elspeth_signed.signing",
    "SignedSink": "elspeth_signed.sink",
    "SigningKeyError": "elspeth_signed.signing",
    "VerifyReport": "elspeth_signed.verifying",
    "build_manifest": "elspeth_signed.signing",
    "find_bundles": "elspeth_signed.verifying",
    "sign_manifest": "elspeth_signed.signing",
    "signing_key": "elspeth_signed.signing",
    "verify_bundle": "elspeth_signed.verifying",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Finding",
    "ManifestError",
    "SignedSink",
    "SigningKeyError",
    "VerifyReport",
    "build_manifest",
    "find_bundles",
    "sign_manifest",
    "signing_key",
    "verify_bundle",
]
