"""The row runner: what every orchestrator that processes rows needs, written once.

An orchestrator supplies ``work(row, ctx) -> Record`` (raising :class:`RowFailed` for a row that
fails); :class:`RowRunner` does the rest for every row: the result of the run being resumed (taken
as it is, not run or paid for again), the settings' processors (a processor's failure is recorded
with the row as the processors left it, so what ``pii_redaction`` masked stays masked), the failure,
the commit to the run store (before the worker takes another row, so a killed run repeats at most
the rows in flight), progress, cancellation, a callback after each finished or resumed row (the
early-stop point) and the row counts.

Example::

    async def work(row: Row, ctx: OrchestrationContext) -> Record:
        reply = await ctx.llm.call(LLMRequest(system="", user=row.data["text"]))
        return Record(row.id, row.data, {"reply": reply.content})

    runner = RowRunner(ctx, work, description="mine")
    counts = await runner.run(table.rows)
    return RunResult(runner.records, runner.failures, {}, counts.metadata(ctx, "mine"))
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence, Sized
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from elspeth._sync import iterate_rows
from elspeth.datatypes import Failure, Record, Row, RunMetadata
from elspeth.errors import ProcessorFailed
from elspeth.orchestration.counted import CountedRows
from elspeth.orchestration.runner import Cancel, run_rows
from elspeth.outcome import RunOutcome

if TYPE_CHECKING:
    from elspeth.orchestration.context import OrchestrationContext

__all__ = ["RowCounts", "RowFailed", "RowRunner"]

_UNOBSERVED: AbstractContextManager[Any] = nullcontext()  # stateless, so one serves every unobserved stage

Finished = Record | Failure
Work = Callable[[Row, "OrchestrationContext"], Awaitable[Record] | Record]
Keep = Callable[[int, Finished | None], Awaitable[None] | None]
After = Callable[[Row, Finished], Awaitable[None] | None]


class RowFailed(Exception):
    """Raised by an orchestrator's ``work`` for a row that fails: the runner records it as the row's :class:`Failure`.

    Args:
        stage: where the row failed (``render``, ``llm``, ``parse``, ``validation:<rule>``, ...).
        error: a one-line reason.
        output: what was obtained before failing (the reply that did not parse).
        attempts: every attempt, as dicts (default: one attempt with ``stage`` and ``error``).
        metrics: what the row spent before failing (the cost and tokens of its paid calls).

    Example::

        raise RowFailed("parse", "the reply is not JSON", output={"response": reply.content})

    """

    def __init__(
        self,
        stage: str,
        error: str,
        output: dict[str, Any] | None = None,
        attempts: Sequence[dict[str, Any]] = (),
        *,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.stage = stage
        self.error = error
        self.output = dict(output or {})
        self.attempts = list(attempts) or [{"attempt": 1, "stage": stage, "error": error}]
        self.metrics = dict(metrics or {})

    @classmethod
    def from_call(cls, exc: BaseException, stage: str = "llm", **entry: Any) -> RowFailed:
        """The failure of a row whose LLM call raised ``exc``, keeping every attempt it carries (``LLMCallFailed``).

        ``entry`` is added to each attempt (an experiment adds its ``criterion``).
        """
        error = f"{type(exc).__name__}: {exc}"
        tried = getattr(exc, "attempts", None) or [{"attempt": 1, "error": error}]
        return cls(stage, error, attempts=[{**attempt, **entry, "stage": stage} for attempt in tried])

    def failure(self, row: Row, group: str | None) -> Failure:
        """The failure as the row's :class:`Failure` (``row`` as the processors left it)."""
        return Failure(row.id, row.data, self.stage, self.error, self.attempts, group, self.output, self.metrics)


@dataclass
class RowCounts:
    """How many rows a :class:`RowRunner` ran.

    Attributes:
        started: rows taken from the input (resumed ones included).
        succeeded: rows that ended as a record (resumed ones included).
        failed: rows that ended as a failure (resumed ones included).
        resumed: rows taken over from the run being resumed.
        not_run: input rows never started (0 unless the run stopped; None when Ctrl-C left no time to count).
    """

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    resumed: int = 0
    not_run: int | None = 0

    def metadata(
        self, ctx: OrchestrationContext, orchestrator: str, extra: dict[str, Any] | None = None
    ) -> RunMetadata:
        """The run's metadata with these counts (``rows`` is ``started``).

        Its outcome is what the run's cancel says so far (``stopped`` after a budget); the engine decides
        the run's outcome once the orchestrator returns.
        """
        return RunMetadata(
            run_id=ctx.run_id,
            name=ctx.name,
            orchestrator=orchestrator,
            rows=self.started,
            succeeded=self.succeeded,
            failed=self.failed,
            outcome=RunOutcome.of_cancel(ctx.cancel.reason),
            extra=dict(extra or {}),
        )


class RowRunner:
    """Runs ``work`` over rows with ``ctx.concurrency`` in flight, owning resume, processors, failures and commits.

    Args:
        ctx: the run's context.
        work: ``async def work(row, ctx) -> Record``, raising :class:`RowFailed` for a failed row. A plain
            ``def`` is allowed for rows that wait on nothing (no LLM call): with no processors or enriching
            utilities, such rows then run in one loop, without a task each.
        group: the rows' group in the run store and on records (an experiment's name).
        cancel: stops taking rows when set (default ``ctx.cancel``; a child ``Cancel`` stops only this part).
        description: the progress bar's label.
        keep: called with ``(position, item)`` for each row in the order rows finish (``item`` None when
            ``work`` raised something other than ``RowFailed``); default: kept in :attr:`records` and
            :attr:`failures` in input order. Hand it a ``SpoolWriter``'s ``put`` to stream.
        after: called after each finished or resumed row has been committed and kept (an early stop checks here).
        commit: commit each row to the run store as it finishes (off only for an orchestrator that commits
            in input order itself, with ``ctx.commit_rows``: the validation orchestrator's verdicts).
        resume: take the rows the run being resumed finished instead of running them.
        count_rows: report the input's row count to the run store (``ctx.expect_rows``, for the "pending" count
            of ``elspeth runs list``) as soon as it is known; off when the orchestrator reports the whole run's
            count itself (an experiment suite runs the rows once per experiment).

    """

    def __init__(
        self,
        ctx: OrchestrationContext,
        work: Work,
        *,
        group: str | None = None,
        cancel: Cancel | None = None,
        description: str = "rows",
        keep: Keep | None = None,
        after: After | None = None,
        commit: bool = True,
        resume: bool = True,
        count_rows: bool = True,
    ) -> None:
        self.ctx, self.work, self.group = ctx, work, group
        self.cancel = cancel or ctx.cancel
        self.description, self.after, self.commit, self.resume = description, after, commit, resume
        self.count_rows = count_rows
        self._keep = keep
        self._records: dict[int, Record] = {}
        self._failures: dict[int, Failure] = {}
        self.counts = RowCounts()
        self._is_inline = False

    @property
    def records(self) -> list[Record]:
        """The records in input order (when no ``keep`` was given)."""
        return [self._records[i] for i in sorted(self._records)]

    @property
    def failures(self) -> list[Failure]:
        """The failures in input order (when no ``keep`` was given)."""
        return [self._failures[i] for i in sorted(self._failures)]

    async def run(self, rows: Iterable[Row] | AsyncIterable[Row]) -> RowCounts:
        """Run every row (numbered 0, 1, 2, ... in input order as ``row.index``); returns the counts.

        Raises:
            Exception: whatever ``work`` or ``keep`` raised other than ``RowFailed``, after the rows in flight
                finished (a bug, or a store that cannot write).
        """
        total = len(rows) if isinstance(rows, Sized) else None
        expect = self.ctx.expect_rows if self.count_rows else None
        source = CountedRows(rows, on_counted=expect)
        if expect is not None and total is not None:
            expect(total)
        self._is_inline = self._inline()
        self.ctx.progress.start(total, self.description)
        try:
            if self._is_inline:
                started = await self._run_inline(source)
            else:
                concurrency = self.ctx.concurrency
                started = await run_rows(_numbered(source), self._handle, concurrency=concurrency, cancel=self.cancel)
        finally:
            self.ctx.progress.finish()
        self.counts.started = started
        self.counts.not_run = await self._not_run(source, total, started)
        return self.counts

    def _inline(self) -> bool:
        if inspect.iscoroutinefunction(self.work):
            return False
        return not self.ctx.processors and not any(hasattr(u, "enrich") for u in self.ctx.utilities)

    async def _run_inline(self, source: CountedRows) -> int:
        started = 0
        async for row in _numbered(source):
            if self.cancel.is_set():
                break
            started += 1
            await self._handle(row)
        return started

    async def _not_run(self, source: CountedRows, total: int | None, started: int) -> int | None:
        if not self.cancel.is_set():
            return 0
        if total is not None:
            return total - started
        if (self.cancel.reason or "").startswith("interrupted"):
            return None  # Ctrl-C: no time to read the rest of the input
        return source.taken + await source.count_rest() - started

    async def _handle(self, row: Row) -> None:
        item: Finished | None = None
        try:
            item = self._prior(row)
            if item is None:
                item = await self._finish(row)
            await self._deliver(row.index, item)
        except BaseException:
            if item is None:
                await self._deliver(row.index, None)  # this position produced nothing: later rows must not wait
            raise
        if self.after is not None:
            await _maybe(self.after(row, item))

    def _prior(self, row: Row) -> Finished | None:
        if not self.resume or not self.ctx.prior:
            return None
        prior = self.ctx.prior_result(self.group, row.id)
        if prior is not None:  # finished in the run being resumed: neither run nor paid for again
            self.counts.resumed += 1
            self.ctx.resumed_row(prior)
        return prior

    async def _finish(self, row: Row) -> Finished:
        observation = self.ctx.observation
        if observation is None:
            return await self._finish_row(row)
        with observation.row(row.id):  # in flight, and the row its LLM attempts are reported with
            return await self._finish_row(row)

    async def _finish_row(self, row: Row) -> Finished:
        shipped = self.ctx.shipped.take(self.group, row.id) if self.ctx.shipped is not None else None
        if shipped is not None:  # worked out on a cluster worker: committed and kept here, as if done here
            item, spend = shipped
            self.ctx.ledger.attempt.add(spend)
            if self.commit and self.ctx.shipped is not None and self.ctx.shipped.committed:
                self.ctx.committed_row(*((item, None) if isinstance(item, Record) else (None, item)))
                return item  # the worker committed it to the shared store, as it finished
        else:
            with self.ctx.ledger.row() as spend:  # what this row's calls spend goes with its commit
                item = await self._work(row)
            if self.ctx.capture is not None:  # on a cluster worker: the result goes back to the client
                self.ctx.capture(self.group, row, item, spend)
        if self.commit:
            with self._stage("commit", row.id):
                if isinstance(item, Record):
                    await self.ctx.commit_row(record=item, spend=spend)
                else:
                    await self.ctx.commit_row(failure=item, spend=spend)
        return item

    def _stage(self, stage: str, row_id: str) -> AbstractContextManager[Any]:
        observation = self.ctx.observation
        return _UNOBSERVED if observation is None else observation.stage(stage, row_id)

    async def _work(self, row: Row) -> Finished:
        try:
            if not self._is_inline:
                with self._stage("processors", row.id):
                    row = await self.ctx.preprocess(row)
            with self._stage("work", row.id):
                done = self.work(row, self.ctx)
                record: Record = await done if inspect.isawaitable(done) else done
        except ProcessorFailed as exc:  # recorded as far as the processors got: what pii_redaction masked stays masked
            return RowFailed("processor", str(exc)).failure(exc.row, self.group)
        except RowFailed as exc:
            return exc.failure(row, self.group)
        if self.group is not None and record.group is None:
            record.group = self.group
        return record

    async def _deliver(self, position: int, item: Finished | None) -> None:
        if isinstance(item, Record):
            self.counts.succeeded += 1
        elif item is not None:
            self.counts.failed += 1
        if self._keep is not None:
            await _maybe(self._keep(position, item))
        elif isinstance(item, Record):
            self._records[position] = item
        elif item is not None:
            self._failures[position] = item


async def _maybe(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value


async def _numbered(rows: CountedRows) -> Any:
    position = 0
    async for row in iterate_rows(rows):
        yield row if row.index == position else Row(row.id, row.data, position)
        position += 1
