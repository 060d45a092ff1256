"""The Azure SDK side: building a client from the options and turning SDK errors into messages a user can act on.

Only imported when a plugin talks to storage, never when plugins are listed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from elspeth import ConfigError, scrub_secrets
from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob._options import AuthOptions, Credentials, account_name_of

__all__ = ["Connection", "connect", "translate"]

_SECRET_PATTERNS = (
    re.compile(r"(sig=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(AccountKey=)[^;\s'\"]+", re.IGNORECASE),
    re.compile(r"(SharedAccessSignature=)[^;\s'\"]+", re.IGNORECASE),
)
_AUTH_CODES = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "AuthorizationResourceTypeMismatch",
    "AuthorizationServiceMismatch",
    "AuthorizationSourceIPMismatch",
    "AuthorizationProtocolMismatch",
    "InsufficientAccountPermissions",
    "InvalidAuthenticationInfo",
}


def _scrub_patterns(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class _RedactSignatures(logging.Filter):
    """Removes SAS signatures and account keys from a log record.

    urllib3 logs every request's full URL at debug level (``elspeth --debug``), and a SAS token
    travels in the URL; the Azure SDK's own logging already redacts it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _scrub_patterns(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _guard_transport_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactSignatures) for f in logger.filters):
        logger.addFilter(_RedactSignatures())


class Connection:
    """A service client together with what error messages need to say about it."""

    def __init__(self, client: BlobServiceClient, credentials: Credentials) -> None:
        self.client = client
        self.credentials = credentials
        self.account_url = client.url.split("?", 1)[0].rstrip("/")
        self.account = client.account_name or account_name_of(self.account_url)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self.client.close()

    def scrub(self, text: str) -> str:
        """``text`` with every secret removed: the configured one, and anything shaped like a key or signature."""
        if self.credentials.secret:
            text = text.replace(self.credentials.secret, "***")
        return _scrub_patterns(scrub_secrets(text))


def connect(options: AuthOptions, account_url: str | None, *, block_size: int | None = None) -> Connection:
    """Build a :class:`BlobServiceClient` from the options and the secret in the environment.

    Args:
        options: the plugin's authentication options.
        account_url: the endpoint (from ``account_url`` or a ``blob_url``); None with a connection string.
        block_size: the largest single request body, for uploads and downloads alike.

    Raises:
        ConfigError: the environment variable is missing, or the connection string is malformed.

    """
    creds = options.credentials()
    _guard_transport_logs()
    kwargs: dict[str, Any] = {
        "retry_total": options.retries,
        "connection_timeout": options.timeout_s,
        "read_timeout": options.timeout_s,
        # never follow a redirect: it would send the data and the signed request to an address nobody configured
        "permit_redirects": False,
    }
    if block_size is not None:
        kwargs |= {
            "max_block_size": block_size,
            "max_single_put_size": block_size,
            "max_single_get_size": block_size,
            "max_chunk_get_size": block_size,
        }
    if creds.kind == "connection_string":
        assert creds.secret is not None
        try:
            client = BlobServiceClient.from_connection_string(creds.secret, **kwargs)
        except ValueError:
            raise ConfigError(
                f"the connection string in ${creds.env} is malformed: expected "
                "'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...' or one with BlobEndpoint=..."
            ) from None
        if account_url and client.url.rstrip("/") != account_url.rstrip("/"):
            client = BlobServiceClient(account_url, credential=client.credential, **kwargs)
        return Connection(client, creds)
    assert account_url is not None, "checked by the options"
    credential: Any
    if creds.kind == "account_key":
        assert creds.secret is not None
        credential = AzureNamedKeyCredential(options.account_name or account_name_of(account_url), creds.secret)
    elif creds.kind == "sas_token":
        assert creds.secret is not None
        credential = AzureSasCredential(creds.secret.lstrip("?"))
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return Connection(BlobServiceClient(account_url, credential=credential, **kwargs), creds)


def _where(conn: Connection, container: str, blob: str | None, *, account: bool = True) -> str:
    place = f"container '{container}'"
    if blob is not None:
        place = f"blob '{blob}' in {place}"
    return f"{place} of storage account '{conn.account}' ({conn.account_url})" if account else place


def translate(exc: Exception, conn: Connection, *, action: str, container: str, blob: str | None = None) -> BlobError:
    """Turn an SDK exception into a :class:`BlobError` that names the place and never holds a secret.

    Args:
        exc: what the SDK raised.
        conn: the connection it was raised on.
        action: what was being done, as "reading" or "uploading".
        container: the container involved.
        blob: the blob involved, if any.

    """
    where = _where(conn, container, blob)
    raw_code = getattr(exc, "error_code", None) or ""
    code = str(getattr(raw_code, "value", raw_code))  # the SDK gives a str enum or a plain str
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        if code == "ContainerNotFound" or blob is None:
            message = f"container '{container}' does not exist in storage account '{conn.account}' ({conn.account_url})"
        elif code == "BlobNotFound":
            message = f"blob '{blob}' does not exist in container '{container}' of storage account '{conn.account}'"
        else:
            message = f"{where} was not found ({code or 'HTTP 404'})"
        return BlobError(message)
    if isinstance(exc, ClientAuthenticationError) or code in _AUTH_CODES or status in (401, 403):
        return BlobError(
            f"storage account '{conn.account}' ({conn.account_url}) refused {conn.credentials.describe()} while "
            f"{action} {_where(conn, container, blob, account=False)} ({code or f'HTTP {status}'}): "
            "check that the credential is current and "
            "allows this operation"
        )
    if isinstance(exc, ResourceExistsError):
        return BlobError(f"{where} already exists; set overwrite: true to replace it, or change the prefix")
    if isinstance(exc, ResourceModifiedError):
        return BlobError(f"{where} changed while it was being read; run again to read the new version")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return BlobError(f"cannot reach storage account '{conn.account}' at {conn.account_url} while {action} {where}")
    if isinstance(exc, HttpResponseError):
        reason = conn.scrub(str(getattr(exc, "reason", "") or ""))
        return BlobError(f"{action} {where} failed: HTTP {status} {code} {reason}".rstrip())
    if isinstance(exc, AzureError):
        first = conn.scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return BlobError(f"{action} {where} failed: {first}")
    if isinstance(exc, ValueError | TypeError) and conn.credentials.kind == "account_key":
        # the SDK raises these while signing with a key that is not valid base64
        return BlobError(f"the account key in ${conn.credentials.env} is not a valid storage account key (base64)")
    return BlobError(f"{action} {where} failed: {type(exc).__name__}: {conn.scrub(str(exc))}")
