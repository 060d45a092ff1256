"""Read-only queries over the run store, a page at a time.

The store's file is opened read-only (SQLite ``mode=ro``), so the viewer can never change a run, and
can be open while a run writes. Rows are read in pages ordered by the primary key
``(run_id, grp, row_id)``: a page is an index range scan of ``limit`` rows whatever the run's size.
Counting a run's rows uses the same index; a search (a substring of the row's JSON) scans, so its
page says only whether more rows follow (``more``), never a total it would have to scan for.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from elspeth import ElspethError
from elspeth_view import figures

__all__ = [
    "StoreUnreadable",
    "check_run",
    "diff_page",
    "group_counts",
    "list_runs",
    "open_store",
    "row_detail",
    "rows_page",
    "run_detail",
]

FORMAT = "elspeth-run-store"
MAX_LIMIT = 500
_STATUS = {"ok": " AND ok=1", "failed": " AND ok=0", "": ""}


class StoreUnreadable(ElspethError):
    """The file is missing, not an Elspeth run store, or the run or row asked for is not in it."""


def open_store(path: Path) -> sqlite3.Connection:
    """The store at ``path``, opened read-only; a :class:`StoreUnreadable` naming the file if it is not one."""
    if not path.is_file():
        raise StoreUnreadable(f"no run store at {path}; run `elspeth run` first, or pass --store FILE")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        found = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreUnreadable(f"{path} is not an Elspeth run store ({exc})") from None
    if found is None or found[0] != FORMAT:
        conn.close()
        raise StoreUnreadable(f"{path} is not an Elspeth run store (its meta table names no {FORMAT!r} format)")
    return conn


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def _groups(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """A run's groups (experiments) in order, one index seek each: ``DISTINCT`` would read every row's entry."""
    found: list[str] = []
    while True:
        after = found[-1] if found else None
        sql = "SELECT grp FROM rows WHERE run_id=?" + (" AND grp>?" if found else "") + " ORDER BY grp LIMIT 1"
        row = conn.execute(sql, (run_id, after) if found else (run_id,)).fetchone()
        if row is None:
            return found
        found.append(row[0])


Memo = dict[tuple[str, str, str, int], int]
"""Row counts of finished runs by (run, group, finished_at, attempts): a server keeps one across requests."""


def _all_rows(conn: sqlite3.Connection, run_id: str, group: str, memo: Memo | None) -> int:
    """Every row of one group, counted on the primary key's index (about 0.25 s a million), once per finished run.

    A run that has finished cannot gain rows until it is resumed, and resuming it clears ``finished_at``
    and raises ``attempts``, so the key changes; a run still going is counted afresh each time.
    """
    stamp = conn.execute("SELECT finished_at, attempts FROM runs WHERE run_id=?", (run_id,)).fetchone()
    key = (run_id, group, stamp[0], stamp[1]) if stamp is not None and stamp[0] else None
    if memo is not None and key is not None and key in memo:
        return memo[key]
    found = int(conn.execute("SELECT COUNT(*) FROM rows WHERE run_id=? AND grp=?", (run_id, group)).fetchone()[0])
    if memo is not None and key is not None:
        memo[key] = found
    return found


def _count(conn: sqlite3.Connection, run_id: str, group: str, status: str = "", memo: Memo | None = None) -> int:
    """Rows of one group: all, finished (``ok``) or failed (the store's partial index of failed rows).

    Finished rows are all less the failed ones, so no count reads the ``ok`` column of every row.
    """
    if status == "failed":
        return int(
            conn.execute("SELECT COUNT(*) FROM rows WHERE run_id=? AND grp=? AND ok=0", (run_id, group)).fetchone()[0]
        )
    every = _all_rows(conn, run_id, group, memo)
    return every - _count(conn, run_id, group, "failed") if status == "ok" else every


def _counts(conn: sqlite3.Connection, run_id: str, memo: Memo | None = None) -> dict[str, dict[str, int]]:
    """Finished and failed rows per group (experiment)."""
    out = {}
    for group in _groups(conn, run_id):
        failed = _count(conn, run_id, group, "failed")
        out[group] = {"done": _count(conn, run_id, group, memo=memo) - failed, "failed": failed}
    return out


def _run(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    run["metadata"] = _json(run.pop("metadata_json", None))
    run["settings"] = _json(run.pop("settings_json", None))
    run["plugins"] = _json(run.pop("plugins_json", None)) or []
    return run


def _cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur


_RUNS = (
    "SELECT r.run_id, r.name, r.orchestrator, r.status, r.started_at, r.finished_at, r.rows_total, r.attempts,"
    " t.cost, t.prompt_tokens, t.completion_tokens, t.llm_calls, t.duration_s FROM runs r"
    " LEFT JOIN totals t ON t.run_id = r.run_id"
)


def list_runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, newest first: status, timings, cost and tokens over every attempt (what ``runs list`` shows)."""
    rows = _cursor(conn).execute(f"{_RUNS} ORDER BY r.started_at DESC, r.run_id DESC").fetchall()
    return [dict(r) for r in rows]


def check_run(conn: sqlite3.Connection, run_id: str) -> None:
    """Nothing if the store has the run, else :class:`StoreUnreadable` naming it."""
    if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
        raise StoreUnreadable(f"no run {run_id!r} in this store")


def run_detail(
    conn: sqlite3.Connection, run_id: str, memo: Memo | None = None, *, counts: bool = True
) -> dict[str, Any]:
    """One run: its row of :func:`list_runs`, settings, plugins, metadata, groups, figures and comparisons.

    Each group has its ``done`` and ``failed`` counts, unless ``counts`` is False: on a big run they
    take a quarter of a second per million rows (the page asks :func:`group_counts` apart for them).
    """
    found = _cursor(conn).execute(f"{_RUNS.replace('SELECT ', 'SELECT r.*, ', 1)} WHERE r.run_id=?", (run_id,))
    row = found.fetchone()
    if row is None:
        raise StoreUnreadable(f"no run {run_id!r} in this store")
    run = _run(conn, row)
    run["groups"] = group_counts(conn, run_id, memo) if counts else [{"name": g} for g in _groups(conn, run_id)]
    aggregates = (run["metadata"] or {}).pop("aggregates", None)
    run["experiments"] = figures.experiments_side_by_side(aggregates)
    run["comparisons"] = figures.comparisons(aggregates)
    return run


def group_counts(conn: sqlite3.Connection, run_id: str, memo: Memo | None = None) -> list[dict[str, Any]]:
    """Each group's (experiment's) finished and failed rows: ``[{"name", "done", "failed"}]``, in order."""
    return [{"name": g, **c} for g, c in _counts(conn, run_id, memo).items()]


def _row(grp: str, row_id: str, ok: int, payload: str, attempt: int | None, spend: str | None) -> dict[str, Any]:
    data = json.loads(payload)
    return {"group": grp, "row_id": row_id, "ok": bool(ok), "attempt": attempt, "spend": _json(spend), **data}


def _anchor(conn: sqlite3.Connection, run_id: str, group: str | None) -> str:
    """The group the rows are paged over: the one asked for, else the run's first (the baseline comes first)."""
    groups = _groups(conn, run_id) if group is None else [group]
    return groups[0] if groups else ""


def rows_page(
    conn: sqlite3.Connection,
    run_id: str,
    *,
    group: str | None = None,
    status: str = "",
    search: str = "",
    offset: int = 0,
    limit: int = 50,
    memo: Memo | None = None,
    count: bool = True,
) -> dict[str, Any]:
    """A page of a run's rows, each with every group's (experiment's) result for the same row id side by side.

    Rows are paged over one group (``group``, else the first): ``status`` keeps its finished (``ok``) or
    failed rows, ``search`` those whose JSON (inputs, outputs, metrics, error) contains the text.
    """
    if status not in _STATUS:
        raise ValueError(f"status must be 'ok', 'failed' or empty, not {status!r}")
    limit = max(1, min(limit, MAX_LIMIT))
    anchor = _anchor(conn, run_id, group)
    where = "run_id=? AND grp=?" + _STATUS[status]
    params: list[Any] = [run_id, anchor]
    if search:
        where += " AND instr(lower(payload), lower(?)) > 0"
        params.append(search)
    found = conn.execute(
        f"SELECT row_id FROM rows WHERE {where} ORDER BY grp, row_id LIMIT ? OFFSET ?", [*params, limit + 1, offset]
    ).fetchall()
    ids = [r[0] for r in found[:limit]]
    total = None if search or not count else _count(conn, run_id, anchor, status, memo)
    marks = ",".join("?" * len(ids))
    by_id: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for grp in _groups(conn, run_id) if ids else []:  # one index lookup per (group, row): the key's order
        for values in conn.execute(
            "SELECT grp, row_id, ok, payload, attempt, spend FROM rows"
            f" WHERE run_id=? AND grp=? AND row_id IN ({marks})",
            [run_id, grp, *ids],
        ):
            by_id[values[1]][values[0]] = _row(*values)
    rows = [{"row_id": i, "groups": by_id[i]} for i in ids]
    return {"group": anchor, "total": total, **_page(offset, limit, len(found), rows)}


def _page(offset: int, limit: int, found: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A page's place and rows; ``found`` is what the query gave when asked for ``limit + 1`` (is there more)."""
    return {"offset": offset, "limit": limit, "more": found > limit, "rows": rows}


def row_detail(conn: sqlite3.Connection, run_id: str, row_id: str) -> dict[str, Any]:
    """Everything the store keeps about one row: per group its inputs, outputs, metrics, error and attempts."""
    found = [
        values
        for grp in _groups(conn, run_id)
        for values in conn.execute(
            "SELECT grp, row_id, ok, payload, attempt, spend FROM rows WHERE run_id=? AND grp=? AND row_id=?",
            (run_id, grp, row_id),
        )
    ]
    if not found:
        raise StoreUnreadable(f"no row {row_id!r} in run {run_id!r}")
    settings = _json(conn.execute("SELECT settings_json FROM runs WHERE run_id=?", (run_id,)).fetchone()[0])
    groups = [_row(*values) for values in found]
    for group in groups:
        group["prompts"] = figures.prompts_for(settings, group["group"], group.get("inputs") or {})
    return {"run_id": run_id, "row_id": row_id, "groups": groups}


def diff_page(
    conn: sqlite3.Connection, run_a: str, run_b: str, *, changed_only: bool = True, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """A page of the rows of two runs matched by ``(group, row_id)``: outputs, status and error side by side.

    ``changed_only`` keeps the rows whose status or outputs differ, and those in one run only (``a`` or
    ``b`` is then None).
    """
    for run_id in (run_a, run_b):
        check_run(conn, run_id)
    limit = max(1, min(limit, MAX_LIMIT))
    cond = (
        " AND (b.row_id IS NULL OR a.ok != b.ok"
        " OR json_extract(a.payload, '$.outputs') IS NOT json_extract(b.payload, '$.outputs')"
        " OR json_extract(a.payload, '$.error') IS NOT json_extract(b.payload, '$.error'))"
        if changed_only
        else ""
    )
    sql = (
        "SELECT a.grp, a.row_id, a.ok, a.payload, b.ok, b.payload FROM rows a"
        " LEFT JOIN rows b ON b.run_id=? AND b.grp=a.grp AND b.row_id=a.row_id"
        f" WHERE a.run_id=?{cond}"
        " ORDER BY a.grp, a.row_id LIMIT ? OFFSET ?"
    )
    found = conn.execute(sql, (run_b, run_a, limit + 1, offset)).fetchall()
    rows = []
    for grp, row_id, ok_a, pay_a, ok_b, pay_b in found[:limit]:
        rows.append({"group": grp, "row_id": row_id, "a": _side(ok_a, pay_a), "b": _side(ok_b, pay_b)})
    only_b = conn.execute(
        "SELECT COUNT(*) FROM rows b WHERE b.run_id=? AND NOT EXISTS"
        " (SELECT 1 FROM rows a WHERE a.run_id=? AND a.grp=b.grp AND a.row_id=b.row_id)",
        (run_b, run_a),
    ).fetchone()[0]
    return {"a": run_a, "b": run_b, "only_in_b": only_b, **_page(offset, limit, len(found), rows)}


def _side(ok: int | None, payload: str | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    data = json.loads(payload)
    keep = ("outputs", "metrics", "error", "stage", "output")
    return {"ok": bool(ok), **{k: data[k] for k in keep if k in data}}
