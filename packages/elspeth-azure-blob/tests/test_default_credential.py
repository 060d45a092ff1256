"""Authentication by ``DefaultAzureCredential``, against Azurite over HTTPS with OAuth checks on.

``azure.identity.DefaultAzureCredential`` is replaced by a TokenCredential that mints the token
Azure AD would (issuer, audience ``https://storage.azure.com``, lifetime), unsigned: Azurite's basic
OAuth checks all of that but the signature, and refuses anonymous requests to a private container,
so a request only succeeds when the plugin sent ``Authorization: Bearer <that token>``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from elspeth import ElspethError, PluginContext
from elspeth_azure_blob import AzureBlobDataSource, AzureBlobSink
from elspeth_testing import sample_run_result

STORAGE_SCOPE = "https://storage.azure.com/.default"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class FakeDefaultCredential:
    """Stands in for ``DefaultAzureCredential``: records how it was built and every token asked of it."""

    built: ClassVar[list[FakeDefaultCredential]] = []
    audience = "https://storage.azure.com"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.requests: list[tuple[str, ...]] = []
        FakeDefaultCredential.built.append(self)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.requests.append(scopes)
        now = int(time.time())
        claims = {
            "aud": self.audience,
            "iss": f"https://sts.windows.net/{uuid.uuid4()}/",
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": str(uuid.uuid4()),
        }
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'not-checked-by-azurite')}"
        return AccessToken(token, now + 3600)

    def close(self) -> None:
        """Nothing to release."""


class WrongAudienceCredential(FakeDefaultCredential):
    """A token minted for another resource: storage must refuse it."""

    audience = "https://vault.azure.net"


@pytest.fixture
def https_container(azurite_https: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A container on the HTTPS emulator, whose self-signed certificate every client here trusts."""
    from azure.storage.blob import BlobServiceClient

    assert azurite_https.cert is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azurite_https.cert))  # read by requests, under azure-core
    name = f"t{uuid.uuid4().hex[:20]}"
    with BlobServiceClient(azurite_https.account_url, credential=azurite_https.key) as service:
        service.create_container(name)
        service.get_blob_client(name, "in.csv").upload_blob("id,x\n1,a\n2,b\n")
        yield name
        service.delete_container(name)


@pytest.fixture
def fake_credential(monkeypatch: pytest.MonkeyPatch) -> type[FakeDefaultCredential]:
    import azure.identity

    FakeDefaultCredential.built = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeDefaultCredential)
    return FakeDefaultCredential


def test_the_datasource_reads_with_a_bearer_token_from_default_azure_credential(
    azurite_https: Any, https_container: str, fake_credential: Any, plugin_context: PluginContext
) -> None:
    source = AzureBlobDataSource(
        AzureBlobDataSource.Options(account_url=azurite_https.account_url, container=https_container, blob="in.csv")
    )
    table = source.load(plugin_context)
    assert [row.data for row in table.rows] == [{"id": "1", "x": "a"}, {"id": "2", "x": "b"}]
    assert fake_credential.built, "DefaultAzureCredential was never built"
    assert all(scopes == (STORAGE_SCOPE,) for c in fake_credential.built for scopes in c.requests)
    assert any(c.requests for c in fake_credential.built), "no token was asked for"


def test_the_sink_uploads_with_a_bearer_token_from_default_azure_credential(
    azurite_https: Any, https_container: str, fake_credential: Any, plugin_context: PluginContext
) -> None:
    from azure.storage.blob import BlobServiceClient

    sink = AzureBlobSink(
        AzureBlobSink.Options(account_url=azurite_https.account_url, container=https_container, prefix="oauth/")
    )
    written = sink.write(sample_run_result(), plugin_context)
    assert [a.url.rsplit("/", 1)[1] for a in written] == ["results.jsonl", "summary.json", "manifest.json"]
    (credential,) = fake_credential.built
    assert credential.requests
    assert set(credential.requests) == {(STORAGE_SCOPE,)}
    with BlobServiceClient(azurite_https.account_url, credential=azurite_https.key) as service:
        props = service.get_blob_client(https_container, "oauth/manifest.json").get_blob_properties()
    assert props.metadata["run_id"] == "run-first"


def test_a_token_for_another_resource_is_refused_naming_default_azure_credential(
    azurite_https: Any, https_container: str, monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", WrongAudienceCredential)
    source = AzureBlobDataSource(
        AzureBlobDataSource.Options(account_url=azurite_https.account_url, container=https_container, blob="in.csv")
    )
    with pytest.raises(ElspethError) as caught:
        source.load(plugin_context)
    message = str(caught.value)
    assert "storage account 'devstoreaccount1'" in message
    assert "refused DefaultAzureCredential while reading blob 'in.csv'" in message
    assert "(AuthenticationFailed)" in message


def test_without_a_token_the_emulator_refuses_so_the_tests_above_prove_the_header_was_sent(
    azurite_https: Any, https_container: str
) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobClient

    with (
        BlobClient(azurite_https.account_url, https_container, "in.csv") as anonymous,
        pytest.raises(HttpResponseError) as caught,
    ):
        anonymous.download_blob().readall()
    assert caught.value.status_code in (401, 403, 404)
