"""Committing finished rows to the run store: one row, a group, or the rows of one turn of the event loop.

:class:`RowCommits` is the part of :class:`~elspeth.OrchestrationContext` that does it; the row runner
calls :meth:`RowCommits.commit_row` for every row it finishes.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth.datatypes import Failure, Record
    from elspeth.ledger import Spend
    from elspeth.store import EncodedRow, RunStore

__all__ = ["RowCommits"]


class _Group:
    """Rows handed to :meth:`OrchestrationContext.commit_row` in one turn of the event loop."""

    __slots__ = ("committed", "error", "rows")

    def __init__(self) -> None:
        self.rows: list[EncodedRow] = []
        self.committed = False
        self.error: Exception | None = None


@types.coroutine
def _yield() -> Any:
    """Let the event loop run what is ready once (``asyncio.sleep(0)`` without its checks)."""
    yield


class RowCommits:
    """Commits finished rows to ``self.store`` and reports each (progress bar, ``row_finished`` observers)."""

    run_id: str
    store: RunStore | None
    _group: _Group | None
    capture: Any

    def _report(self, record: Record | None, failure: Failure | None) -> None:
        """Advance the progress bar and call the ``row_finished`` observers (the context defines it)."""
        raise NotImplementedError

    async def commit_row(
        self, record: Record | None = None, failure: Failure | None = None, spend: Spend | None = None
    ) -> None:
        """Commit a finished row and report it (progress bar, ``row_finished`` observers), for little per row.

        The rows handed in during one turn of the event loop are committed in one transaction at the
        start of the next, before any of their workers runs on; this returns once the caller's row is
        committed. So a row is in the store before its worker takes
        another, and a killed run repeats at most the calls in flight, while a busy run pays for one
        commit per turn instead of one per row. ``spend`` is what the row's calls spent (the row runner
        passes the ledger's figures for the row); it is committed with the row.

        Raises:
            StoreError: the store could not write the rows of this turn (none of them is committed).

        Example::

            record = await self._answer(row)
            await ctx.commit_row(record=record)

        """
        if self.store is not None:
            group = self._group
            if group is None:
                group = self._group = _Group()
                asyncio.get_running_loop().call_soon(self._commit_group, group)
            group.rows.append(self.store.encode_row(self.run_id, record, failure, spend))
            await _yield()  # the commit was scheduled before this task's wake-up, so it has run now
            if group.error is not None:
                raise group.error
        self._report(record, failure)

    def commit_rows(self, rows: Sequence[tuple[Record | None, Failure | None]]) -> None:
        """Commit one or several finished rows, each ``(record, None)`` or ``(None, failure)``, in one transaction.

        The rows are committed before this returns; then each is reported (progress bar, ``row_finished``
        observers). For an orchestrator whose rows cost nothing to redo (no LLM call: the validation
        orchestrator), committing in groups trades a few rows checked again after a kill for far fewer
        transactions.
        """
        # on a cluster worker, an orchestrator's own commits are not final (they come in input order only on
        # the client, where its verdicts are: the validation orchestrator's ``unique``): the client makes them
        if self.store is not None and rows and self.capture is None:
            self.store.commit_rows(self.run_id, rows)
        for record, failure in rows:
            self._report(record, failure)

    def committed_row(self, record: Record | None = None, failure: Failure | None = None) -> None:
        """Report a row another process committed (a cluster worker, to a shared store) as :meth:`commit_row` would."""
        self._report(record, failure)

    def commit_pending(self) -> None:
        """Commit the rows handed to :meth:`commit_row` whose turn has not come (the run is ending)."""
        if self._group is not None:
            self._commit_group(self._group)

    def _commit_group(self, group: _Group) -> None:
        if group.committed:
            return
        group.committed = True
        if self._group is group:
            self._group = None
        assert self.store is not None
        try:
            self.store.write_rows(group.rows)
        except Exception as exc:  # every worker of the group raises it
            group.error = exc
