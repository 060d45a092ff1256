"""The run store in a PostgreSQL database: core's store operations over psycopg 3.

Every operation is core's :class:`~elspeth.RunStore` (written once, in SQLite's dialect); this backend
changes only how they reach the database: its own connection in autocommit mode (one statement is
one transaction, as in SQLite), ``?`` markers rewritten to psycopg's ``%s``, an upsert where SQLite
replaces a row, and a sequence column ``seq`` where SQLite has ``rowid``. So a resumed run, the
totals over attempts and ``--retry-errors`` mean here exactly what they mean for the file.

Several writers commit concurrently, each on its own connection (each process, or each partition,
opens its own store): rows of different keys never wait for each other, and a row committed twice
(a partition run again after its worker was lost) is one row, the later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from elspeth import RunStore, StoreError

__all__ = ["PostgresRunStore"]

FORMAT = "elspeth-run-store"
VERSION = "2"  # the same version as core's SQLite file: the same tables, the same rows
_LOCK = 0x456C7370  # the advisory lock that keeps two writers from creating the tables at once
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
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
CREATE SEQUENCE rows_seq;
CREATE TABLE rows (
    run_id TEXT NOT NULL,
    grp TEXT NOT NULL,
    row_id TEXT NOT NULL,
    ok INTEGER NOT NULL,
    payload TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    attempt INTEGER,
    spend TEXT,
    seq BIGINT NOT NULL DEFAULT nextval('rows_seq'),
    PRIMARY KEY (run_id, grp, row_id)
);
CREATE INDEX rows_by_attempt ON rows (run_id, attempt);
CREATE TABLE totals (
    run_id TEXT PRIMARY KEY,
    cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    llm_calls BIGINT NOT NULL DEFAULT 0,
    duration_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    open_attempt INTEGER,
    attempt_started_at TEXT
);
"""
_TABLES = {"meta", "runs", "rows", "totals"}
_COLUMNS = "run_id, grp, row_id, ok, payload, attempt, spend, finished_at"
_UPSERT = (
    " ON CONFLICT (run_id, grp, row_id) DO UPDATE SET ok=EXCLUDED.ok, payload=EXCLUDED.payload,"
    " attempt=EXCLUDED.attempt, spend=EXCLUDED.spend, finished_at=EXCLUDED.finished_at, seq=EXCLUDED.seq"
)
_REACH = "check store.url, that the server is up, and the password in PGPASSWORD or ~/.pgpass"


def _without_password(url: str) -> str:
    """``url`` as messages may show it: a password, if one was given anyway, is left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresRunStore(RunStore):
    """A run store in the PostgreSQL database at ``url``; its tables are made on first use.

    Raises:
        StoreError: the server cannot be reached, the database holds tables that are not an Elspeth
            run store, or a store of another version (the message names the URL and what to do).
    """

    _DB_ERRORS = (psycopg.Error,)
    _SEQ = "seq"
    _ENSURE_TOTALS = "INSERT INTO totals (run_id) VALUES (?) ON CONFLICT DO NOTHING"

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self._where = _without_password(url)
        self._attempt_of: dict[str, int] = {}
        self._live = {}
        self._statements: dict[str, str] = {}
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the run store {self._where}: {str(exc).strip()}; {_REACH}") from None
        try:
            self._prepare(create)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open_url(cls, url: str, *, create: bool = True) -> PostgresRunStore:
        """Open the store at ``url`` (the ``elspeth.run_stores`` entry point's constructor)."""
        return cls(url, create=create)

    def _prepare(self, create: bool) -> None:
        """Identify the database's store, or make its tables: one writer at a time (an advisory lock)."""
        with self._guard("opening it"), self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            found = self._conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            tables = {name for (name,) in found} & _TABLES
            if "meta" in tables:
                self._check_meta()
            elif tables:
                raise StoreError(
                    f"{self._where} holds tables ({', '.join(sorted(tables))}) that are not an Elspeth run store; "
                    "point store.url at a database of its own"
                )
            elif not create:
                raise StoreError(f"no run store at {self._where}")
            else:
                self._conn.execute(_SCHEMA)
                self._conn.execute("INSERT INTO meta VALUES ('format', %s), ('version', %s)", (FORMAT, VERSION))

    def _check_meta(self) -> None:
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise StoreError(f"{self._where} has a meta table but is not an Elspeth run store; set store.url elsewhere")
        if meta.get("version") != VERSION:
            raise StoreError(
                f"{self._where} is run store version {meta.get('version')}; this Elspeth reads version {VERSION} "
                "only. Point store.url at a new database"
            )

    def write_rows(self, rows: Sequence[tuple[tuple[Any, ...], Any]]) -> None:
        """Commit encoded rows in one transaction; a key given twice is written once, the later (as SQLite does).

        PostgreSQL refuses an upsert that touches one row twice in one statement, where SQLite's
        ``INSERT OR REPLACE`` keeps the later.
        """
        if len({values[:3] for values, _ in rows}) < len(rows):
            rows = list({values[:3]: (values, spend) for values, spend in rows}.values())
        super().write_rows(rows)

    # -- how the store's operations reach PostgreSQL ------------------------------------------

    def _failure(self, exc: Exception, doing: str) -> StoreError:
        if isinstance(exc, psycopg.OperationalError):  # the connection, not the data
            return StoreError(f"lost the run store {self._where} while {doing} ({str(exc).strip()}); {_REACH}")
        return StoreError(f"the run store {self._where} failed while {doing} ({str(exc).strip()})")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        statement = self._statements.get(sql)
        if statement is None:  # core's SQL has no '?' or '%' but its markers
            statement = self._statements[sql] = sql.replace("?", "%s")
        return self._conn.execute(statement, params)

    def _insert(self, count: int) -> str:
        return f"INSERT INTO rows ({_COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * count) + _UPSERT

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
