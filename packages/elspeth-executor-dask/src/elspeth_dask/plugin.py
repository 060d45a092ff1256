"""Entry point of ``elspeth-executor-dask``: registers the ``dask`` executor.

Imports only ``elspeth``, so ``elspeth plugins list`` stays fast: ``distributed`` loads when a run uses it.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_executors(register: Registrar) -> None:
    """Register the ``dask`` executor."""
    register(
        "elspeth_dask.executor:DaskExecutor",
        name="dask",
        description="Runs the orchestrator's rows over partitions on a dask.distributed cluster (a scheduler's "
        "address, or a LocalCluster it starts).",
    )
