"""The signing key is registered as a secret when it is read, so no message or output ever holds it."""

from __future__ import annotations

from elspeth import scrub_secrets
from elspeth_signed.signing import signing_key


def test_the_signing_key_is_registered_when_it_is_read() -> None:
    assert signing_key("SIGNED_TEST_KEY_VAR", {"SIGNED_TEST_KEY_VAR": "sign-me-0123456789"}) == b"sign-me-0123456789"
    assert scrub_secrets("key sign-me-0123456789") == "key <redacted:SIGNED_TEST_KEY_VAR>"
