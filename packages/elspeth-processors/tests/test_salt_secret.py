"""The pseudonymisation salt is registered as a secret when ``pii_redaction`` reads it."""

from __future__ import annotations

import pytest

from elspeth import scrub_secrets
from elspeth_processors.redaction import PiiRedaction


def test_the_salt_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_TEST_SALT_VAR", "salt-value-0123456789")
    PiiRedaction(PiiRedaction.Options.model_validate({"mode": "pseudonymise", "salt_env": "PII_TEST_SALT_VAR"}))
    assert scrub_secrets("salt-value-0123456789") == "<redacted:PII_TEST_SALT_VAR>"
