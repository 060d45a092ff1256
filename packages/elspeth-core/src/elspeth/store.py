"""The run store: every finished row committed as it is reported, so a run can resume and never pays twice.

One SQLite file (embedded, no server), by default ``elspeth-runs.sqlite`` in the run's output folder,
holds every run of that folder: its settings (secrets are never in settings), their hash, its plugins
and versions, its status and metadata, one row per finished row (record or failure) keyed by
``(run_id, group, row_id)``, and the run's totals (cost, tokens, LLM calls, duration) summed over
every attempt, so that a resumed run's budget and history count what earlier attempts spent.

A row is committed when the orchestrator reports it finished, before the report returns
(``OrchestrationContext.commit_rows``), or before the awaiting worker goes on
(``await OrchestrationContext.commit_row``: the rows reported in one turn of the event loop are one
transaction at the start of the next). An orchestrator that reports each row the moment it finishes,
before that worker takes another row, loses no finished row to a kill: a killed run repeats only the
calls in flight, never more than ``concurrency``. The ``experiment`` and ``batch`` orchestrators both
do, with ``commit_row`` (``batch`` reports a row before its reorder buffer, which orders only the
output). The ``validation`` orchestrator reports rows later, in input order, as its uniqueness
check needs, and in groups of 512 (``ctx.commit_rows``): it calls no LLM, and a resumed validation
run checks every row again. A commit costs tens of microseconds (WAL mode with
``synchronous=NORMAL``: a write, no fsync), shared by the rows of a turn; it survives a killed
process, not a power cut (that would need ``FULL`` and an fsync per commit).

The file, and the ``-wal`` and ``-shm`` files SQLite makes beside it (SQLite gives them the
database's permissions), is created readable by its owner only, like every file a sink writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from elspeth._store_file import (
    _COLUMNS,
    _ENCODE,
    _PER_STATEMENT,
    FORMAT,
    VERSION,
    EncodedRow,
    SQLiteAccess,
    StoreError,
    _dump,
    _now,
    _payload,
    connect,
    create_private,
    insert_emitted,
    select_emitted,
)
from elspeth.datatypes import Failure, Record
from elspeth.diffing import settings_diff
from elspeth.ledger import Spend
from elspeth.store_batches import BatchRecords
from elspeth.totals import RunTotals, seconds_between

__all__ = ["FORMAT", "VERSION", "EncodedRow", "RunStore", "StoreError", "create_private", "settings_diff"]


class RunStore(SQLiteAccess, BatchRecords):
    """A run store file. Open it with :meth:`open`; every write is committed before it returns.

    Every read and write turns SQLite's errors (a damaged page, a locked file) into :class:`StoreError`
    naming the file.

    Raises:
        StoreError: the file is not an Elspeth run store or is corrupted (the message names the file).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._where = str(self.path)  # how messages name the store
        self._conn: Any = connect(self.path)
        self._attempt_of: dict[str, int] = {}  # run_id -> the attempt this process began, stamped on its rows
        # run_id -> what this process's attempt has committed so far and when it last did: summed as rows are
        # written, so ending a run never reads its rows back
        self._live: dict[str, tuple[Spend, list[str]]] = {}

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> RunStore:
        """Open (and with ``create``, make) the store at ``path``."""
        if not create and not Path(path).is_file():
            raise StoreError(f"no run store at {path}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(path)

    # -- runs ---------------------------------------------------------------------------------

    def begin_run(
        self,
        run_id: str,
        *,
        name: str,
        orchestrator: str,
        settings: Mapping[str, Any],
        settings_hash: str,
        settings_path: str | None,
        plugins: list[dict[str, str]],
    ) -> None:
        """Record a new run, or mark a resumed one as running again.

        A resumed run whose last attempt never finished (killed, or a second Ctrl-C) has that
        attempt's committed rows added to its totals first (see :meth:`totals`).
        """
        with self._guard(f"starting run {run_id}"), self._transaction():
            updated = self._execute(
                "UPDATE runs SET status='running', attempts=attempts+1, plugins_json=?, finished_at=NULL"
                " WHERE run_id=?",
                (_dump(plugins), run_id),
            ).rowcount
            if not updated:
                self._execute(
                    "INSERT INTO runs (run_id, name, orchestrator, status, settings_json, settings_hash, settings_path,"
                    " plugins_json, started_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                    (run_id, name, orchestrator, _dump(settings), settings_hash, settings_path, _dump(plugins), _now()),
                )
            (attempt,) = self._execute("SELECT attempts FROM runs WHERE run_id=?", (run_id,)).fetchone()
            started = _now()
            self._save_totals(run_id, self._totals(run_id), (attempt, started))
            self._attempt_of[run_id] = attempt
            self._live[run_id] = (Spend(), [started])

    def join_run(self, run_id: str) -> None:
        """Stamp the rows this store writes with the attempt of ``run_id`` running now, begun elsewhere.

        A writer that did not call :meth:`begin_run` (a partition's worker, on its own connection)
        joins the run so its rows count towards the attempt's totals read from the store.

        Raises:
            StoreError: the run is not in the store, or is not running.
        """
        with self._guard(f"joining run {run_id}"):
            found = self._execute("SELECT attempts, status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if found is None or found[1] != "running":
            state = "not in it" if found is None else f"{found[1]}, not running"
            raise StoreError(f"cannot join run {run_id} in {self._where}: it is {state}")
        self._attempt_of[run_id] = found[0]

    def set_total(self, run_id: str, rows: int) -> None:
        """Record how many rows the run will finish in all."""
        with self._guard(f"recording the row count of run {run_id}"):
            self._execute("UPDATE runs SET rows_total = ? WHERE run_id=?", (rows, run_id))

    def finish_run(
        self, run_id: str, status: str, metadata: Mapping[str, Any], totals: RunTotals | None = None
    ) -> None:
        """Record how the run ended.

        Args:
            run_id: the run.
            status: ``completed``, ``stopped``, ``interrupted`` or ``failed``.
            metadata: the run's metadata; the engine adds the run's aggregates (``aggregates``) for ``elspeth view``.
            totals: the run's totals over every attempt, this one included. Without them (a run that
                failed before it could count), this attempt's committed rows and its wall time so far
                are added to the totals of the attempts before it.
        """
        with self._guard(f"recording the end of run {run_id}"), self._transaction():
            self._execute(
                "UPDATE runs SET status=?, finished_at=?, metadata_json=? WHERE run_id=?",
                (status, _now(), _dump(dict(metadata)), run_id),
            )
            self._save_totals(run_id, totals if totals is not None else self._totals(run_id, until=_now()), None)
            self._attempt_of.pop(run_id, None)
            self._live.pop(run_id, None)

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's row, with counts of finished rows and its totals.

        Raises:
            StoreError: no such run (the message lists the most recent ones), or the file cannot be read.
        """
        with self._guard(f"reading run {run_id}"):
            row = self._execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is not None:
                return self._describe(row)
        recent = [r["run_id"] for r in self.runs()[:5]]
        hint = f" Recent runs: {', '.join(recent)}." if recent else " The store has no runs."
        raise StoreError(f"no run '{run_id}' in {self._where}.{hint}")

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with counts of finished rows and totals."""
        with self._guard("listing its runs"):
            found = self._execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC").fetchall()
            return [self._describe(r) for r in found]

    def totals(self, run_id: str) -> RunTotals:
        """What the run spent over every attempt so far.

        An attempt that ended normally stored exact totals. One that never ended (killed, a second
        Ctrl-C) or is still running counts what its committed rows' records say they cost, and its wall
        time up to its last committed row; calls in flight when it stopped, and the LLM calls count,
        are not known.
        """
        with self._guard(f"reading the totals of run {run_id}"):
            return self._totals(run_id)

    def _totals(self, run_id: str, until: str | None = None) -> RunTotals:
        found = self._execute(
            "SELECT cost, prompt_tokens, completion_tokens, llm_calls, duration_s, open_attempt, attempt_started_at"
            " FROM totals WHERE run_id=?",
            (run_id,),
        ).fetchone()
        if found is None:
            return RunTotals()
        *numbers, attempt, started = found
        stored = RunTotals(*numbers)
        if attempt is None:
            return stored
        return stored + self._attempt(run_id, attempt, started, until)

    def attempt_totals(self, run_id: str) -> RunTotals:
        """Cost and tokens of the rows the attempt running now committed, and its wall time to the last of them."""
        with self._guard(f"reading the totals of run {run_id}"):
            found = self._execute(
                "SELECT open_attempt, attempt_started_at FROM totals WHERE run_id=?", (run_id,)
            ).fetchone()
            if found is None or found[0] is None:
                return RunTotals()
            return self._attempt(run_id, found[0], found[1], None)

    def _attempt(self, run_id: str, attempt: int, started: str, until: str | None) -> RunTotals:
        live = self._live.get(run_id)
        if live is not None and self._attempt_of.get(run_id) == attempt:  # this process's attempt: summed as written
            spent, last = live
            return spent.totals(duration_s=seconds_between(started, until or last[0]))
        rows = self._execute(
            "SELECT spend, finished_at FROM rows WHERE run_id=? AND attempt=?", (run_id, attempt)
        ).fetchall()
        total = Spend()
        for spend, _ in rows:
            if spend:
                total.add(Spend.from_dict(json.loads(spend)))
        end = until or max((r[1] for r in rows), default=started)
        return total.totals(duration_s=seconds_between(started, end))

    def _save_totals(self, run_id: str, totals: RunTotals, open_attempt: tuple[int, str] | None) -> None:
        """Store the totals; ``open_attempt`` is the attempt now running and when it began (None: none is)."""
        attempt, started = open_attempt if open_attempt is not None else (None, None)
        self._execute(self._ENSURE_TOTALS, (run_id,))
        self._execute(
            "UPDATE totals SET cost=?, prompt_tokens=?, completion_tokens=?, llm_calls=?, duration_s=?,"
            " open_attempt=?, attempt_started_at=? WHERE run_id=?",
            (
                totals.cost,
                totals.prompt_tokens,
                totals.completion_tokens,
                totals.llm_calls,
                totals.duration_s,
                attempt,
                started,
                run_id,
            ),
        )

    def _describe(self, row: Any) -> dict[str, Any]:
        cols = [d[0] for d in self._execute("SELECT * FROM runs LIMIT 0").description]
        run = dict(zip(cols, row, strict=True))
        counts = dict(
            self._execute("SELECT ok, COUNT(*) FROM rows WHERE run_id=? GROUP BY ok", (run["run_id"],)).fetchall()
        )
        run["done"], run["failed"] = counts.get(1, 0), counts.get(0, 0)
        total = run.get("rows_total")
        run["pending"] = None if total is None else max(0, total - run["done"] - run["failed"])
        run["settings"] = json.loads(run.pop("settings_json"))
        run["plugins"] = json.loads(run.pop("plugins_json") or "[]")
        run["metadata"] = json.loads(run.pop("metadata_json") or "null")
        run["totals"] = self._totals(run["run_id"]).to_dict()
        return run

    # -- rows ---------------------------------------------------------------------------------

    def commit_row(self, run_id: str, record: Record | None, failure: Failure | None) -> None:
        """Commit one finished row, in a transaction of its own, before returning."""
        self.write_rows([self.encode_row(run_id, record, failure)])

    def commit_rows(self, run_id: str, rows: Sequence[tuple[Record | None, Failure | None]]) -> None:
        """Commit finished rows, each a ``(record, failure)`` pair with one of the two given, in one transaction."""
        if rows:
            self.write_rows([self.encode_row(run_id, record, failure) for record, failure in rows])

    def encode_row(
        self, run_id: str, record: Record | None, failure: Failure | None, spend: Spend | None = None
    ) -> EncodedRow:
        """A finished row (a record or a failure) as :meth:`write_rows` takes it: its columns, and what it spent.

        ``spend`` is what the row's calls spent, from the run's ledger; without it, what the row's metrics
        say (``cost``, ``prompt_tokens``, ``completion_tokens``; the LLM calls are then not known).
        """
        item = record if record is not None else failure
        assert item is not None
        attempt = self._attempt_of.get(run_id)
        if spend is None:
            spend = Spend.from_metrics(item.metrics)
        spent = _ENCODE(spend.to_dict()) if spend else None
        ok = int(record is not None)  # 1 or 0 in both backends' INTEGER column
        return (run_id, item.group or "", item.row_id, ok, _payload(item), attempt, spent), spend

    def write_rows(self, rows: Sequence[EncodedRow]) -> None:
        """Commit encoded rows in one transaction, stamped with the time now, then add them to the live totals.

        It runs on the event loop, a group of rows at a time, so it is kept lean: up to 124 rows are
        one multi-row statement in autocommit mode, more are several in one transaction.

        Raises:
            StoreError: the file could not be written; none of the rows is committed.
        """
        if not rows:
            return
        finished = _now()
        params: list[Any] = []
        for values, _ in rows:
            params.extend(values)
            params.append(finished)
        try:
            if len(rows) <= _PER_STATEMENT:
                self._execute(self._insert(len(rows)), params)
            else:
                with self._transaction():
                    for start in range(0, len(rows), _PER_STATEMENT):
                        chunk = params[start * _COLUMNS : (start + _PER_STATEMENT) * _COLUMNS]
                        self._execute(self._insert(len(chunk) // _COLUMNS), chunk)
        except self._DB_ERRORS as exc:
            first = rows[0][0]
            more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
            raise self._failure(exc, f"recording row {first[2]}{more} of run {first[0]}") from None
        for values, spend in rows:
            live = self._live.get(values[0])
            if live is not None:
                live[0].add(spend)
                live[1][0] = finished

    def finished_rows(self, run_id: str) -> dict[tuple[str, str], Record | Failure]:
        """Every committed row of a run, by ``(group, row_id)``."""
        out: dict[tuple[str, str], Record | Failure] = {}
        with self._guard(f"reading the finished rows of run {run_id}"):
            for grp, row_id, ok, payload in self._execute(
                "SELECT grp, row_id, ok, payload FROM rows WHERE run_id=?", (run_id,)
            ):
                data = json.loads(payload)
                out[(grp, row_id)] = Record(**data) if ok else Failure(**data)
        return out

    def finished_mark(self, run_id: str, *, records_only: bool = False) -> tuple[int, int]:
        """How many rows the run has committed (only records, or records and failures), and a mark to read them at.

        Rows committed later, or committed again (``--retry-errors`` replaces a failure), lie past the
        mark: :meth:`finished_row` with it reads the rows as they are now.
        """
        with self._guard(f"reading the finished rows of run {run_id}"):
            (mark,) = self._execute(f"SELECT COALESCE(MAX({self._SEQ}), 0) FROM rows").fetchone()
            where = "run_id=? AND ok=1" if records_only else "run_id=?"
            (count,) = self._execute(f"SELECT COUNT(*) FROM rows WHERE {where}", (run_id,)).fetchone()
        return count, mark

    def finished_row(
        self, run_id: str, group: str, row_id: str, *, mark: int, records_only: bool = False
    ) -> Record | Failure | None:
        """One row committed by ``mark`` (see :meth:`finished_mark`); failures are left out with ``records_only``."""
        with self._guard(f"reading row {row_id} of run {run_id}"):
            found = self._execute(
                f"SELECT ok, payload FROM rows WHERE run_id=? AND grp=? AND row_id=? AND {self._SEQ}<=?",
                (run_id, group, row_id, mark),
            ).fetchone()
        if found is None or (records_only and not found[0]):
            return None
        data = json.loads(found[1])
        return Record(**data) if found[0] else Failure(**data)

    def finished_keys(self, run_id: str, *, mark: int, records_only: bool = False) -> list[tuple[str, str]]:
        """The ``(group, row_id)`` of every row :meth:`finished_row` finds with the same arguments."""
        where = f"run_id=? AND {self._SEQ}<=?" + (" AND ok=1" if records_only else "")
        with self._guard(f"reading the finished rows of run {run_id}"):
            found = self._execute(f"SELECT grp, row_id FROM rows WHERE {where}", (run_id, mark))
            return [(grp, row_id) for grp, row_id in found]

    def mark_emitted(self, run_id: str, row_ids: Sequence[str]) -> None:
        """Remember that these rows' results reached every streaming sink (committed before it returns)."""
        # up to 400 is one statement, autocommitted: no BEGIN and COMMIT to pay for
        once = self._transaction() if len(row_ids) > 400 else nullcontext()
        with self._guard(f"marking results of run {run_id} emitted"), once:
            insert_emitted(self._conn, run_id, row_ids)

    def emitted(self, run_id: str, row_ids: Sequence[str]) -> set[str]:
        """Which of these rows' results :meth:`mark_emitted` recorded for the run."""
        with self._guard(f"reading the emitted results of run {run_id}"):
            return select_emitted(self._conn, run_id, row_ids)
