"""Options shared by every plugin here: where the storage account is and how to authenticate to it.

Nothing in this module imports the Azure SDK, so listing plugins and validating settings stay cheap.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth import ConfigError, register_secret

__all__ = ["AuthOptions", "BlobAddress", "Credentials", "account_name_of", "split_blob_url"]

_AUTH_FIELDS = ("connection_string_env", "account_key_env", "sas_token_env")


def _is_path_style(host: str) -> bool:
    """Emulators (Azurite) and IP endpoints put the account in the path: ``http://127.0.0.1:10000/account``."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class BlobAddress:
    """An account URL, container and blob parsed from a blob URL."""

    account_url: str
    container: str
    blob: str


def split_blob_url(url: str) -> BlobAddress:
    """Split ``https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`` (or an emulator's path-style URL).

    Raises:
        ValueError: the URL has no container or blob, or carries a SAS token.

    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"blob_url must be an http(s) URL, got '{url}'")
    if "sig" in parse_qs(parts.query):
        raise ValueError(
            "blob_url must not carry a SAS token (settings are not secret): "
            "put the token in an environment variable and set sas_token_env"
        )
    segments = parts.path.lstrip("/").split("/")
    account_path = ""
    if _is_path_style(parts.hostname):
        account_path = "/" + segments.pop(0) if segments and segments[0] else ""
    if len(segments) < 2 or not segments[0] or not "/".join(segments[1:]):
        raise ValueError(f"blob_url '{url}' must name a container and a blob: .../CONTAINER/BLOB")
    return BlobAddress(
        account_url=f"{parts.scheme}://{parts.netloc}{account_path}",
        container=unquote(segments[0]),
        blob=unquote("/".join(segments[1:])),
    )


def account_name_of(account_url: str) -> str:
    """The storage account's name: the host's first label, or the path's first segment for an emulator."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if _is_path_style(host):
        return parts.path.strip("/").split("/")[0]
    return host.split(".")[0]


@dataclass(frozen=True)
class Credentials:
    """What :func:`elspeth_azure_blob._client.service_client` needs; ``secret`` is never logged or shown."""

    kind: str
    """``connection_string``, ``account_key``, ``sas_token`` or ``default``."""
    env: str | None
    secret: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(kind={self.kind!r}, env={self.env!r})"

    def describe(self) -> str:
        """Where the credential came from, for error messages."""
        if self.kind == "default":
            return "DefaultAzureCredential"
        return f"the {self.kind.replace('_', ' ')} in ${self.env}"


class AuthOptions(BaseModel):
    """Options that say which storage account to use and how to authenticate.

    At most one of the ``*_env`` options may be set; with none, ``DefaultAzureCredential`` is used
    (managed identity, ``az login``, environment service principal), which needs an https URL.
    """

    model_config = ConfigDict(extra="forbid")

    account_url: str | None = Field(
        None,
        description="the blob endpoint, e.g. https://ACCOUNT.blob.core.windows.net "
        "(not needed with connection_string_env or blob_url)",
    )
    connection_string_env: str | None = Field(
        None, description="environment variable holding a storage connection string"
    )
    account_key_env: str | None = Field(None, description="environment variable holding the account key")
    account_name: str | None = Field(
        None, description="account name for account_key_env (default: taken from the account URL)"
    )
    sas_token_env: str | None = Field(None, description="environment variable holding a SAS token")
    retries: int = Field(3, ge=0, le=20, description="retries of a failed request before giving up")
    timeout_s: float = Field(60.0, gt=0, description="connect and read timeout of each request, in seconds")

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        chosen = [f for f in _AUTH_FIELDS if getattr(self, f)]
        if len(chosen) > 1:
            raise ValueError(f"set at most one of {', '.join(_AUTH_FIELDS)} (got {' and '.join(chosen)})")
        if self.account_url is not None:
            parts = urlsplit(self.account_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"account_url must be an http(s) URL, got '{self.account_url}'")
            if parts.query:
                raise ValueError(
                    "account_url must not carry a query (a SAS token is a secret): "
                    "put the token in an environment variable and set sas_token_env"
                )
        return self

    def endpoint(self) -> str | None:
        """The account URL from the options, if given (a connection string may give it instead)."""
        return self.account_url.rstrip("/") if self.account_url else None

    def check_endpoint(self, account_url: str | None) -> None:
        """Raise ``ValueError`` unless ``account_url`` and the auth options fit together."""
        if self.connection_string_env:
            return
        if account_url is None:
            raise ValueError("set account_url (or blob_url, or connection_string_env)")
        if not (self.account_key_env or self.sas_token_env) and urlsplit(account_url).scheme != "https":
            raise ValueError(
                f"{account_url} is not https: DefaultAzureCredential works only over https; "
                "set connection_string_env, account_key_env or sas_token_env"
            )

    def credentials(self) -> Credentials:
        """Read the secret from the environment now.

        Raises:
            ConfigError: the named environment variable is unset or empty.

        """
        for field_name in _AUTH_FIELDS:
            env = getattr(self, field_name)
            if env:
                value = os.environ.get(env, "")
                if not value.strip():
                    raise ConfigError(f"environment variable {env} (named by {field_name}) is not set or is empty")
                register_secret(value, env)  # with its AccountKey= / sig= parts: scrubbed from every message
                return Credentials(field_name.removesuffix("_env"), env, value.strip())
        return Credentials("default", None)
