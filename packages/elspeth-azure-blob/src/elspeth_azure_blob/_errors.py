"""The one exception type this distribution raises for storage and data problems."""

from __future__ import annotations

from elspeth import ElspethError

__all__ = ["BlobError"]


class BlobError(ElspethError):
    """Azure Blob Storage refused or failed a request, or a blob's content cannot be read as configured.

    The message names the storage account, container and blob, and never holds a secret.
    """
