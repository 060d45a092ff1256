"""Elspeth's ``dask`` executor: a run's rows over partitions on a ``dask.distributed`` cluster.

The executor is registered through the entry point ``dask = "elspeth_dask.plugin"``; settings name
it as ``executor: {plugin: dask, options: {address: ...}}`` (docs/distributed.md).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
