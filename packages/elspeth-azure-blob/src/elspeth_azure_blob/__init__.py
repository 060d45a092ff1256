"""Elspeth plugins for Azure Blob Storage: ``azure_blob`` and ``csv_blob`` datasources, ``azure_blob`` sink.

Importing this package does not import the Azure SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

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


__getattr__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = ["AzureBlobDataSource", "AzureBlobSink", "BlobArtifact", "BlobError", "CsvBlobDataSource"]
