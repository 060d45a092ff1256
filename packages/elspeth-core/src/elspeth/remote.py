"""The worker's side of a cluster executor: rebuild the run from its settings and run one partition.

What is shipped to a worker is :class:`RunSpec` (the settings as the user wrote them, which name
environment variables and never hold a secret, the folder they are relative to, the run id and the
columns) and a :class:`~elspeth.partitions.Partition`. The worker discovers its own installed
plugins, builds every plugin afresh (an LLM client reads its key from the worker's environment),
checks the settings again, and runs the orchestrator over the partition's rows with no run store
and its outputs in a temporary folder. The row runner hands each row's result to ``ctx.capture``;
they go back to the client as a :class:`PartitionResult`, which the client commits, in input order.

Example (what an executor submits for each partition)::

    spec = RunSpec.of(ctx, table.columns)
    result = run_partition(spec, partition)       # on a worker
    for group, row_id, item, spend in result.results: ...
"""

from __future__ import annotations

import asyncio
import functools
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elspeth.datatypes import Failure, Record, Row, Table
from elspeth.ledger import Spend

if TYPE_CHECKING:
    from elspeth.orchestration.context import OrchestrationContext
    from elspeth.orchestration.runner import Cancel
    from elspeth.partitions import Partition
    from elspeth.registry import Registry

__all__ = ["PartitionResult", "RunSpec", "run_partition"]

Stop = Callable[[], str | None]
_STOP_POLL_S = 0.2


@dataclass(frozen=True)
class RunSpec:
    """What every worker needs to rebuild the run: no secret, no open handle, nothing built.

    Attributes:
        settings: the settings as written (JSON), naming the environment variables secrets are read from.
        file: the settings file's name, for messages.
        base_dir: the folder the settings' paths are relative to (inputs must be readable there from workers).
        run_id: the run's id (LLM requests carry it).
        columns: the table's columns, as the client's datasource found them.
        finished: ``(group, row_id)`` of the rows the run being resumed finished: a worker's row runner
            skips them as a local resume does (the client takes their results from its store).
        shared_store: the run's store is a server every worker reaches (``store.url``): each worker's
            row runner commits its rows there as they finish, concurrently with the other partitions, so
            a lost client or scheduler loses no finished row (a SQLite file is written by the client only).
    """

    settings: str
    file: str
    base_dir: str
    run_id: str
    columns: list[str]
    finished: frozenset[tuple[str, str]] = frozenset()
    shared_store: bool = False

    @classmethod
    def of(cls, ctx: OrchestrationContext, columns: list[str]) -> RunSpec:
        """The spec of the run ``ctx`` belongs to."""
        loaded = ctx.loaded
        name = loaded.path.name if loaded.path is not None else "settings.yaml"
        text = json.dumps(loaded.raw, default=str)
        shared = ctx.store is not None and loaded.settings.store.url is not None
        return cls(text, name, str(loaded.base_dir), ctx.run_id, list(columns), frozenset(ctx.prior), shared)


@dataclass
class PartitionResult:
    """A partition's rows in input order and each row's result, as a worker sends them back.

    Attributes:
        label: the partition, as messages name it.
        rows: its rows as read, in input order.
        results: ``(group, row_id, item, spend)`` for each row worked out (an experiment has one per group).
        committed: the worker committed them to the run's shared store (:attr:`RunSpec.shared_store`).
        stopped: why the worker stopped taking rows before the partition's end (``stop`` said so, or a
            cluster-wide budget was reached), or None: the partition's rows without a result were not
            worked out, and the client must not work them either.
    """

    label: str
    rows: list[Row] = field(default_factory=list)
    results: list[tuple[str | None, str, Record | Failure, dict[str, Any]]] = field(default_factory=list)
    committed: bool = False
    stopped: str | None = None

    def spends(self) -> Iterator[tuple[str | None, str, Record | Failure, Spend]]:
        """The results with each spend as a :class:`~elspeth.ledger.Spend`."""
        for group, row_id, item, spend in self.results:
            yield group, row_id, item, Spend.from_dict(spend)


class _Finished(Mapping[tuple[str, str], Record | Failure]):
    """The resumed run's finished rows as a worker knows them: their keys, each standing for a result it skips.

    The worker's row runner takes such a row as resumed (no call, no result sent back); the client's
    row runner takes the row's real result from the run store.
    """

    def __init__(self, keys: frozenset[tuple[str, str]]) -> None:
        self._keys = keys

    def __getitem__(self, key: tuple[str, str]) -> Record | Failure:
        if key not in self._keys:
            raise KeyError(key)
        return Record(key[1], {})

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _recorded(rows: Iterator[Row], into: list[Row]) -> Iterator[Row]:
    """``rows``, each kept in ``into`` as it is read (the client yields them in this order)."""
    for row in rows:
        into.append(row)
        yield row


@functools.cache
def _registry() -> Registry:
    """The worker's installed plugins, discovered once per worker process."""
    from elspeth.discovery import load_registry

    return load_registry()


Controls = Callable[["OrchestrationContext"], None]
"""Called with a worker's prepared context before its first row (see :func:`run_partition`)."""


def run_partition(
    spec: RunSpec, partition: Partition, stop: Stop | None = None, controls: Controls | None = None
) -> PartitionResult:
    """Run the orchestrator over one partition here (a worker's thread) and return every row's result.

    ``stop`` is asked a few times a second whether to stop taking rows (the executor's task was
    cancelled, or its client is gone): it returns the reason, or None to go on. The rows in flight
    then finish and, with a shared store, are committed; the result says why it stopped.
    ``controls``, if given, is called with the run's context once it is prepared and before any row: a
    cluster executor swaps the run's own rate limiter and cost tracker for ones that hold the limit and
    budget across the cluster (``ctx.llm_factory.use_controls(...)``), and may set ``ctx.cancel``.
    """
    with tempfile.TemporaryDirectory(prefix="elspeth-partition-") as folder:
        return asyncio.run(_run(spec, partition, Path(folder), stop, controls))


async def _watch(stop: Stop, cancel: Cancel, result: PartitionResult) -> None:
    while not cancel.is_set():
        reason = stop()
        if reason is not None:
            result.stopped = reason
            cancel.set(f"interrupted: {reason}")
            return
        await asyncio.sleep(_STOP_POLL_S)


async def _run(
    spec: RunSpec, partition: Partition, folder: Path, stop: Stop | None, controls: Controls | None
) -> PartitionResult:
    from elspeth._sync import invoke
    from elspeth.config import load_settings_text
    from elspeth.engine import prepare
    from elspeth.execution import _close_parts, _open_parts
    from elspeth.resume import RunOptions, open_configured

    loaded = load_settings_text(spec.settings, base_dir=Path(spec.base_dir), file=spec.file)
    # outputs a worker's orchestrator writes (spools, a rejects file) go to a folder of its own, then away
    loaded.settings = loaded.settings.model_copy(update={"output_dir": str(folder)})
    result = PartitionResult(partition.label)
    table = Table(spec.columns, _recorded(partition.read(), result.rows))
    prepared = await prepare(loaded, _registry(), run_id=spec.run_id, options=RunOptions(record=False), table=table)

    def capture(group: str | None, row: Row, item: Record | Failure, spend: Spend) -> None:
        result.results.append((group, row.id, item, spend.to_dict()))

    ctx = prepared.context
    ctx.capture = capture
    ctx.prior = _Finished(spec.finished)
    if spec.shared_store:  # commit each row where the client and every other partition see it
        ctx.store = await asyncio.to_thread(open_configured, loaded, create=False)
        ctx.store.join_run(spec.run_id)
        result.committed = True
    if controls is not None:
        controls(ctx)
    watcher = asyncio.create_task(_watch(stop, ctx.cancel, result)) if stop is not None else None
    await _open_parts(prepared)
    try:
        outcome = await invoke(prepared.orchestrator.run, table, ctx)
        for sequence in (outcome.records, outcome.failures):
            close = getattr(sequence, "close", None)
            if close is not None:  # a spool of the worker's own: the client keeps the rows
                close()
    finally:
        if watcher is not None:
            watcher.cancel()
        await _close_parts(prepared)
        if ctx.store is not None:
            ctx.commit_pending()
            ctx.store.close()
    if result.stopped is None:
        result.stopped = ctx.cancel.reason  # a cluster-wide budget reached
    return result
