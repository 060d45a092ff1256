"""A storage secret read from the environment is registered, so its parts are scrubbed from every message."""

from __future__ import annotations

import pytest
from azure.core.exceptions import AzureError, HttpResponseError

from elspeth import scrub_secrets
from elspeth_azure_blob._client import connect, translate
from elspeth_azure_blob._options import AuthOptions

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cw=="
CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:1/acct;"
)


def test_the_account_key_inside_a_connection_string_is_scrubbed_wherever_it_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLOB_SECRET_TEST_CONN", CONNECTION)
    options = AuthOptions.model_validate({"connection_string_env": "BLOB_SECRET_TEST_CONN"})
    with connect(options, None) as conn:
        assert scrub_secrets(f"signing with {ACCOUNT_KEY}") == "signing with <redacted:BLOB_SECRET_TEST_CONN>"
        for exc in (AzureError(f"bad key {ACCOUNT_KEY}"), HttpResponseError(message=f"x {ACCOUNT_KEY}")):
            message = str(translate(exc, conn, action="reading", container="c", blob="b.csv"))
            assert ACCOUNT_KEY not in message
            assert "container 'c'" in message
