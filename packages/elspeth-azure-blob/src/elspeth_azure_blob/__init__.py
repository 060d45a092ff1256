"""Elspeth plugins for Azure Blob Storage: ``azure_blob`` and ``csv_blob`` datasources, ``azure_blob`` sink.

Importing this package does not import the Azure SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth_azure_blob._errors import BlobError
    from elspeth_azure_blob.datasources import AzureBlobDataSource, CsvBlobDataSource
    from elspeth_azure_blob.sinks import AzureBlobSink, BlobArtifact

# names load on first use, so that importing the package (its entry point is ``elspeth_azure_blob.plugin``) stays cheap
_LAZY = {
    "AzureBlobDataSource": "elspeth_azure_blob.datasources",
    "AzureBlobSink": "elspeth_azure_blob.sinks",
    "BlobArtifact": "elspeth_azure_blob.sinks",
    "BlobError": "elspeth_azure_blob._errors",
    "CsvBlobDataSource": "elspeth_azure_blob.datasources",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth_azure_blob' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = ["AzureBlobDataSource", "AzureBlobSink", "BlobArtifact", "BlobError", "CsvBlobDataSource"]
