"""The ``dask`` executor: the orchestrator runs here, its rows' work on a ``dask.distributed`` cluster.

Each partition of the input (a byte range of a CSV file, read on the worker, or a chunk of rows read
here for a source without partitions) is one task: the worker rebuilds the run from the settings and
runs the orchestrator over the partition (:func:`elspeth.run_partition`). The results stream back
partition by partition, in input order, into the same orchestrator running here, whose row runner
commits each row to the run store and keeps it for the sinks as if it had done the work itself. So
sinks see one ordered result, the store is written only here (a SQLite file needs no sharing), and a
partition that is re-run after its worker died commits nothing twice: nothing of it is committed
until its result arrives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import RunFailed, RunResult, Table
from elspeth_dask.stream import run_on_cluster

if TYPE_CHECKING:
    from elspeth import OrchestrationContext

__all__ = ["DaskExecutor"]

log = logging.getLogger("elspeth.dask")


class DaskOptions(BaseModel):
    """Where the cluster is (or how big a local one to start) and how the input is cut."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="the scheduler, e.g. tcp://scheduler:8786 (`dask scheduler`); without it a LocalCluster "
        "of n_workers processes is started for the run and stopped after it",
    )
    n_workers: int = Field(2, ge=1, description="worker processes of the LocalCluster started without an address")
    threads_per_worker: int = Field(1, ge=1, description="threads of each LocalCluster worker")
    partition_bytes: int = Field(16 << 20, ge=1, description="bytes of input per partition, for a source that splits")
    partition_rows: int = Field(
        1000, ge=1, description="rows per partition for a source without partitions (read here and shipped)"
    )
    in_flight: int | None = Field(
        None, ge=1, description="partitions submitted ahead of the one being consumed (default: 2 x worker threads)"
    )
    connect_timeout_s: float = Field(30.0, gt=0, description="how long to wait for the scheduler")


class DaskExecutor:
    """Runs the orchestrator's rows over partitions on a dask.distributed cluster."""

    name = "dask"
    Options = DaskOptions
    reads_partitions = True
    """The engine opens a splittable datasource's header only, and hands this executor its partitions."""

    def __init__(self, options: DaskOptions) -> None:
        self.options = options

    async def run(self, orchestrator: Any, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Run ``orchestrator`` over ``table`` with the rows' work on the cluster."""
        client, cluster = await asyncio.to_thread(self._connect)
        try:
            return await run_on_cluster(client, orchestrator, table, ctx, self.options)
        finally:
            await asyncio.to_thread(_disconnect, client, cluster)

    def _connect(self) -> tuple[Any, Any]:
        from distributed import Client, LocalCluster

        opts = self.options
        if opts.address is not None:
            try:
                return Client(opts.address, timeout=opts.connect_timeout_s), None  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise RunFailed(
                    f"executor 'dask' cannot reach the scheduler at {opts.address} (executor.options.address): {exc}"
                ) from None
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=opts.n_workers,
            threads_per_worker=opts.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
        log.info("dask: started a LocalCluster of %d workers at %s", opts.n_workers, cluster.scheduler_address)
        return Client(cluster), cluster  # type: ignore[no-untyped-call]


def _disconnect(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()
