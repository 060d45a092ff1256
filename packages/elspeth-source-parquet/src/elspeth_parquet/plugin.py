"""Entry point of ``elspeth-source-parquet``: registers the ``parquet`` datasource.

Imports only ``elspeth``, so ``elspeth plugins list`` stays fast: pyarrow loads when a run reads a file.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register the ``parquet`` datasource."""
    register(
        "elspeth_parquet.datasource:ParquetDataSource",
        name="parquet",
        description="Rows from a local Parquet file, read a batch at a time; split by row groups on a cluster.",
    )
