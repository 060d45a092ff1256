"""What runs on a worker for each partition: core's ``run_partition``, stopped when Dask no longer wants it.

Dask does not interrupt a running task: cancelling its future (Ctrl-C on the client, a failed run)
or losing the client that wanted it (killed) only makes the scheduler forget it, while the worker's
thread runs on, making LLM calls nobody will read, and, worse, the calls a resumed run makes again.
So the task asks its worker a few times a second whether its key is still wanted, and stops taking
rows once it is not: the rows in flight finish (and are committed, with a shared store), nothing else
is started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elspeth import PartitionResult, RunSpec, run_partition

__all__ = ["run_partition_task"]

_WANTED = {"executing", "long-running", "ready", "waiting", "constrained", "fetch", "flight", "resumed"}


def run_partition_task(spec: RunSpec, partition: Any, coordinator: Any = None) -> PartitionResult:
    """Run ``partition`` here (a Dask task), stopping when its future is cancelled or its client is gone.

    With a ``coordinator`` (the cluster's controls actor), under the cluster-wide rate limit and budget.
    """
    if coordinator is None:
        return run_partition(spec, partition, _stop_here())
    from elspeth_dask.controls import run_controlled

    return run_controlled(spec, partition, coordinator, _stop_here())


def _stop_here() -> Callable[[], str | None] | None:
    """``stop`` for the task running on this thread, or None outside a Dask worker (called directly)."""
    from distributed import get_worker

    try:
        worker = get_worker()
        key = worker.get_current_task()
    except (ValueError, KeyError, LookupError):
        return None

    def stop() -> str | None:
        if worker.status.name not in ("running", "paused"):
            return f"the worker is {worker.status.name}"
        task = worker.state.tasks.get(key)
        if task is None or task.state not in _WANTED:
            return "the task was cancelled (the client stopped, or is gone)"
        return None

    return stop
