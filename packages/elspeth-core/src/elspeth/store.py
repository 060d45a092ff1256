"""The run store: every finished row committed as it finishes, so a run can resume and never pays twice.

One SQLite file (embedded, no server), by default ``elspeth-runs.sqlite`` in the run's output folder,
holds every run of that folder: its settings (secrets are never in settings), their hash, its plugins
and versions, its status and metadata, and one row per finished row (record or failure) keyed by
``(run_id, group, row_id)``.

Each row is committed in its own transaction the moment it finishes, before the orchestrator takes
another row: a killed run can only repeat the calls that were in flight, never more than
``concurrency``. A commit costs about 50 µs (WAL mode with ``synchronous=NORMAL``: a write, no
fsync), small next to an LLM call; it survives a killed process, not a power cut (that would need
``FULL`` and an fsync per row).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elspeth.errors import ElspethError
from elspeth.types import Failure, Record

__all__ = ["RunStore", "StoreError", "settings_diff"]

FORMAT = "elspeth-run-store"
VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    orchestrator TEXT NOT NULL,
    status TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    settings_path TEXT,
    plugins_json TEXT NOT NULL DEFAULT '[]',
    started_at TEXT NOT NULL,
    finished_at TEXT,
    rows_total INTEGER,
    metadata_json TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS rows (
    run_id TEXT NOT NULL,
    grp TEXT NOT NULL,
    row_id TEXT NOT NULL,
    ok INTEGER NOT NULL,
    payload TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, grp, row_id)
);
"""


class StoreError(ElspethError):
    """The run store cannot be used: not an Elspeth store, corrupted, or the run is unknown."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dump(value: Any) -> str:
    from elspeth.builtins.sinks import to_json

    return to_json(value)


def _payload(item: Record | Failure) -> str:
    # a shallow dict and one dumps: this runs once per row on the event loop (asdict would deep-copy)
    data = {f.name: getattr(item, f.name) for f in fields(item)}
    data["inputs"] = dict(item.inputs)
    return json.dumps(data, default=str, ensure_ascii=False)


def settings_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two settings documents differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(settings_diff(old[key], new[key], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in settings_diff(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix or "(the whole file)"]


class RunStore:
    """A run store file. Open it with :meth:`open`; every write is committed before it returns.

    Raises:
        StoreError: the file is not an Elspeth run store or is corrupted (the message names the file).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = self._connect(self.path)

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> RunStore:
        """Open (and with ``create``, make) the store at ``path``."""
        if not create and not Path(path).is_file():
            raise StoreError(f"no run store at {path}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def _connect(self, path: Path) -> sqlite3.Connection:
        fresh = not path.exists() or path.stat().st_size == 0
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            if not fresh:  # identify the file before changing anything in it
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "meta" not in tables:
                    conn.close()
                    raise StoreError(
                        f"{path} is an SQLite database but not an Elspeth run store; set store.path elsewhere"
                    )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if fresh:
                conn.executescript(_SCHEMA)
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", VERSION)]
                )
            found = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path} is not an Elspeth run store or is corrupted ({exc}); move it aside or set store.path"
            ) from None
        if found.get("format") != FORMAT:
            conn.close()
            raise StoreError(f"{path} is an SQLite database but not an Elspeth run store; set store.path elsewhere")
        if found.get("version") != VERSION:
            conn.close()
            raise StoreError(
                f"{path} is run store version {found.get('version')}; this Elspeth reads version {VERSION}"
            )
        return conn

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
        """Record a new run, or mark a resumed one as running again."""
        with self._lock():
            updated = self._conn.execute(
                "UPDATE runs SET status='running', attempts=attempts+1, plugins_json=?, finished_at=NULL"
                " WHERE run_id=?",
                (_dump(plugins), run_id),
            ).rowcount
            if not updated:
                self._conn.execute(
                    "INSERT INTO runs (run_id, name, orchestrator, status, settings_json, settings_hash, settings_path,"
                    " plugins_json, started_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                    (run_id, name, orchestrator, _dump(settings), settings_hash, settings_path, _dump(plugins), _now()),
                )

    def set_total(self, run_id: str, rows: int) -> None:
        """Record how many rows the run will finish in all."""
        self._execute("UPDATE runs SET rows_total = ? WHERE run_id=?", (rows, run_id))

    def finish_run(self, run_id: str, status: str, metadata: Mapping[str, Any]) -> None:
        """Record how the run ended."""
        self._execute(
            "UPDATE runs SET status=?, finished_at=?, metadata_json=? WHERE run_id=?",
            (status, _now(), _dump(dict(metadata)), run_id),
        )

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's row, with counts of finished rows.

        Raises:
            StoreError: no such run; the message lists the most recent ones.
        """
        row = self._conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            recent = [r["run_id"] for r in self.runs()[:5]]
            hint = f" Recent runs: {', '.join(recent)}." if recent else " The store has no runs."
            raise StoreError(f"no run '{run_id}' in {self.path}.{hint}")
        return self._describe(row)

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with counts of finished rows."""
        return [
            self._describe(r) for r in self._conn.execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC")
        ]

    def _describe(self, row: Any) -> dict[str, Any]:
        cols = [d[0] for d in self._conn.execute("SELECT * FROM runs LIMIT 0").description]
        run = dict(zip(cols, row, strict=True))
        counts = dict(
            self._conn.execute("SELECT ok, COUNT(*) FROM rows WHERE run_id=? GROUP BY ok", (run["run_id"],)).fetchall()
        )
        run["done"], run["failed"] = counts.get(1, 0), counts.get(0, 0)
        total = run.get("rows_total")
        run["pending"] = None if total is None else max(0, total - run["done"] - run["failed"])
        run["settings"] = json.loads(run.pop("settings_json"))
        run["plugins"] = json.loads(run.pop("plugins_json") or "[]")
        run["metadata"] = json.loads(run.pop("metadata_json") or "null")
        return run

    # -- rows ---------------------------------------------------------------------------------

    def row_finished(self, run_id: str, record: Record | None, failure: Failure | None) -> None:
        """Commit one finished row."""
        item = record if record is not None else failure
        assert item is not None
        self._execute(
            "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, item.group or "", item.row_id, int(isinstance(item, Record)), _payload(item), _now()),
        )

    def finished_rows(self, run_id: str) -> dict[tuple[str, str], Record | Failure]:
        """Every committed row of a run, by ``(group, row_id)``."""
        out: dict[tuple[str, str], Record | Failure] = {}
        for grp, row_id, ok, payload in self._conn.execute(
            "SELECT grp, row_id, ok, payload FROM rows WHERE run_id=?", (run_id,)
        ):
            data = json.loads(payload)
            out[(grp, row_id)] = Record(**data) if ok else Failure(**data)
        return out

    # -- writing ------------------------------------------------------------------------------

    def _lock(self) -> Any:
        return _Transaction(self._conn)

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"the run store {self.path} could not record a row: {exc}") from exc

    def close(self) -> None:
        """Close the file."""
        self._conn.close()


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
