"""Entry point of ``elspeth-azure-blob``: registers the blob datasources and the blob sink.

Imports nothing from the Azure SDK; the plugins import it when they first talk to storage.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register ``azure_blob`` and ``csv_blob``."""
    register(
        "elspeth_azure_blob.datasources:AzureBlobDataSource",
        name="azure_blob",
        description="Rows from a CSV or JSON Lines blob in Azure Blob Storage, streamed as the run reads them.",
    )
    register(
        "elspeth_azure_blob.datasources:CsvBlobDataSource",
        name="csv_blob",
        description="Rows from a CSV blob (with a header line) in Azure Blob Storage, streamed as the run reads them.",
    )


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``azure_blob`` sink."""
    register(
        "elspeth_azure_blob.sinks:AzureBlobSink",
        name="azure_blob",
        description="Uploads a run's results (JSON Lines), summary, every file its other sinks wrote, and a manifest.",
    )
