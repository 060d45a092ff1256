"""The run store's SQLite file: its schema, opening and identifying it, and encoding rows for it.

:mod:`elspeth.store` holds the store's operations; this module holds what is bound to the file's
format, and :class:`SQLiteAccess`, how those operations reach the database: the one class a backend
for another database (``elspeth-store-postgres``) overrides.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elspeth.datatypes import Failure, Record
from elspeth.errors import ElspethError
from elspeth.ledger import Spend

__all__ = ["EncodedRow", "SQLiteAccess", "StoreError", "connect", "create_private", "insert_emitted", "select_emitted"]

FORMAT = "elspeth-run-store"
VERSION = "2"  # 2: each row keeps what its calls spent (`spend`); version 1 is refused
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
    attempt INTEGER,
    spend TEXT,
    PRIMARY KEY (run_id, grp, row_id)
);
CREATE TABLE IF NOT EXISTS totals (
    run_id TEXT PRIMARY KEY,
    cost REAL NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    llm_calls INTEGER NOT NULL DEFAULT 0,
    duration_s REAL NOT NULL DEFAULT 0,
    open_attempt INTEGER,
    attempt_started_at TEXT
);
"""
# a partial index holding only failed rows: `elspeth view` counts and pages a run's failures without
# reading every row, and a run pays for it only on the rows that fail. Added to older stores on open.
_FAILED_INDEX = "CREATE INDEX IF NOT EXISTS rows_failed ON rows (run_id, grp, row_id) WHERE ok = 0"
# which results a streaming run has handed to every sink: added to a version-2 file when it is opened, so an
# older file gains it without a new version (nothing else reads it)
_EMITTED = """
CREATE TABLE IF NOT EXISTS emitted (
    run_id TEXT NOT NULL,
    row_id TEXT NOT NULL,
    PRIMARY KEY (run_id, row_id)
) WITHOUT ROWID
"""
_DAMAGED = "if the file is damaged, move it aside (its runs can no longer be resumed) or set store.path to a new file"


class StoreError(ElspethError):
    """The run store cannot be used: not an Elspeth store, corrupted, the disk is full, or the run is unknown."""


def _disk_full(exc: Exception, path: Path) -> StoreError | None:
    """A :class:`StoreError` saying the disk is full when SQLite (or the OS) said so, else None."""
    full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if not full and not (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return None
    return StoreError(
        f"the disk is full: cannot write the run store {path} ({exc}); free some space, or set store.path "
        "to a file on another disk"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dump(value: Any) -> str:
    from elspeth.files import to_json

    return to_json(value)


_FIELDS: dict[type, tuple[str, ...]] = {}
_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _payload(item: Record | Failure) -> str:
    # a shallow dict and one dumps: this runs once per row on the event loop (asdict would deep-copy)
    kind = type(item)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(item))
    data = {name: getattr(item, name) for name in names}
    data["inputs"] = dict(item.inputs)
    return _ENCODE(data)


def create_private(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only (0600), unless it exists; its folder must exist.

    SQLite gives a database's ``-wal``, ``-shm`` and journal files the database file's permissions, so
    creating the database this way keeps all of them private without touching the process's umask.
    """
    with suppress(FileExistsError):  # an existing file keeps the permissions its owner gave it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


_INSERT_ROW = (
    "INSERT OR REPLACE INTO rows (run_id, grp, row_id, ok, payload, attempt, spend, finished_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
EncodedRow = tuple[tuple[Any, ...], Spend]
"""A finished row's values for the ``rows`` table (all but ``finished_at``), and what it spent."""
_COLUMNS = 8  # values a row gives _INSERT_ROW
_PER_STATEMENT = 999 // _COLUMNS  # rows in one multi-row INSERT: SQLite before 3.32 allows 999 parameters
_INSERT_ROWS: dict[int, str] = {}


def _insert_rows(count: int) -> str:
    """One INSERT of ``count`` rows (one statement in autocommit mode is one transaction)."""
    sql = _INSERT_ROWS.get(count)
    if sql is None:
        sql = _INSERT_ROWS[count] = _INSERT_ROW + f", ({', '.join('?' * _COLUMNS)})" * (count - 1)
    return sql


def insert_emitted(conn: sqlite3.Connection, run_id: str, row_ids: Sequence[str]) -> None:
    """Mark rows' results emitted (see :meth:`elspeth.store.RunStore.mark_emitted`)."""
    for start in range(0, len(row_ids), 400):  # one statement per 400 rows (SQLite's limit on parameters)
        chunk = row_ids[start : start + 400]
        values = ",".join("(?, ?)" for _ in chunk)
        conn.execute(
            f"INSERT OR IGNORE INTO emitted (run_id, row_id) VALUES {values}", [p for r in chunk for p in (run_id, r)]
        )


def select_emitted(conn: sqlite3.Connection, run_id: str, row_ids: Sequence[str]) -> set[str]:
    """The rows of ``row_ids`` marked emitted, asked 500 at a time (SQLite's limit on parameters)."""
    found: set[str] = set()
    for start in range(0, len(row_ids), 500):
        chunk = list(row_ids[start : start + 500])
        query = f"SELECT row_id FROM emitted WHERE run_id=? AND row_id IN ({','.join('?' * len(chunk))})"
        found.update(row_id for (row_id,) in conn.execute(query, (run_id, *chunk)))
    return found


def connect(path: Path) -> sqlite3.Connection:
    """Open the SQLite file at ``path``: made private when new, else checked to be a store of this version."""
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        if fresh:
            create_private(path)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    except (sqlite3.Error, OSError) as exc:
        raise _disk_full(exc, path) or StoreError(f"cannot open the run store {path}: {exc}") from None
    try:
        if not fresh:  # identify the file before changing anything in it
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" not in tables:
                raise StoreError(f"{path} is an SQLite database but not an Elspeth run store; set store.path elsewhere")
            found = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if found.get("format") != FORMAT:
                raise StoreError(f"{path} is an SQLite database but not an Elspeth run store; set store.path elsewhere")
            if found.get("version") != VERSION:
                raise StoreError(
                    f"{path} is run store version {found.get('version')}; this Elspeth reads version {VERSION} "
                    "only. Move the file aside (its runs can no longer be resumed or listed by this version) "
                    "or set store.path to a new file"
                )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if fresh:
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", VERSION)])
        with suppress(sqlite3.OperationalError):  # a file this user may only read works without it, only slower
            conn.execute(_FAILED_INDEX)
        conn.execute(_EMITTED)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _disk_full(exc, path) or StoreError(
            f"{path} is not an Elspeth run store or is corrupted ({exc}); move it aside or set store.path"
        ) from None
    return conn


class SQLiteAccess:
    """How the run store reaches its database: SQLite's errors, statements and transactions.

    The store's SQL is written once, in SQLite's dialect with ``?`` markers; a backend for another
    database subclasses :class:`~elspeth.store.RunStore` and overrides what is here.
    """

    _DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
    _SEQ = "rowid"  # grows with every row written, a rewritten row included: a mark of what was committed
    _ENSURE_TOTALS = "INSERT OR IGNORE INTO totals (run_id) VALUES (?)"
    path: Path
    _where: str  # how messages name the store
    _conn: Any

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn the database's errors while ``doing`` into a :class:`StoreError` naming the store and what to do."""
        try:
            yield
        except self._DB_ERRORS as exc:
            raise self._failure(exc, doing) from None

    def _failure(self, exc: Exception, doing: str) -> StoreError:
        """The :class:`StoreError` for the database's error ``exc`` while ``doing``."""
        full = _disk_full(exc, self.path)
        return full or StoreError(f"the run store {self._where} failed while {doing} ({exc}); {_DAMAGED}")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor."""
        return self._conn.execute(sql, params)

    def _insert(self, count: int) -> str:
        """The statement that commits ``count`` rows, replacing a row committed before under the same key."""
        return _insert_rows(count)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:  # SQLite may already have rolled back (a damaged page, a full disk)
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
