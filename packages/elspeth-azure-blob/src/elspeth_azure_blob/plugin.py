"""Entry point of ``elspeth-azure-blob``: registers the blob datasources and the blob sink.

Imports nothing from the Azure SDK; the plugins import it when they first talk to storage.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_azure_blob.datasources import AzureBlobDataSource, CsvBlobDataSource
from elspeth_azure_blob.sinks import AzureBlobSink


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register ``azure_blob`` and ``csv_blob``."""
    register(AzureBlobDataSource)
    register(CsvBlobDataSource)


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``azure_blob`` sink."""
    register(AzureBlobSink)
