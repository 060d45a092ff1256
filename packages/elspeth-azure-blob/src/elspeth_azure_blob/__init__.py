"""Elspeth plugins for Azure Blob Storage: ``azure_blob`` and ``csv_blob`` datasources, ``azure_blob`` sink.

Importing this package does not import the Azure SDK.
"""

from __future__ import annotations

from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob.datasources import AzureBlobDataSource, CsvBlobDataSource
from elspeth_azure_blob.sinks import AzureBlobSink, BlobArtifact

__version__ = "0.1.0"

__all__ = ["AzureBlobDataSource", "AzureBlobSink", "BlobArtifact", "BlobError", "CsvBlobDataSource"]
