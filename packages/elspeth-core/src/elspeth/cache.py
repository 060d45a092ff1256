"""The response cache (utility ``response_cache``, registered in ``builtins``): never pay twice for one LLM call.

The key is a SHA-256 of everything that decides an answer: the client plugin, its options (which
hold the model, temperature and endpoint; secrets are never in options), the endpoint, both prompts
and the call's parameters. A hit skips the rate limiter, the client and the cost tracker; the answer
is marked ``cached`` and its record says so. Entries older than ``ttl_s`` are ignored and replaced.

Only accepted answers stay: an orchestrator that rejects an answer (a validator said no) calls
``discard`` so no later run replays it, and asks again with ``refresh_cache`` so the re-ask is live.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth.datatypes import LLMResponse, Usage
from elspeth.errors import ElspethError
from elspeth.orchestration.pipeline import cache_key
from elspeth.orchestration.plugin_context import PluginContext
from elspeth.outputs import DeclaredPath, output_target
from elspeth.store import FORMAT as STORE_FORMAT
from elspeth.store import create_private

__all__ = ["CacheFile", "ResponseCache", "cache_key"]

_FORMAT = "elspeth-response-cache-1"


class CacheFile:
    """The SQLite file behind the cache; also what ``elspeth cache stats`` and ``clear`` open."""

    def __init__(self, path: Path) -> None:
        """Open the cache at ``path``, creating it (readable by its owner only) if it does not exist.

        Nothing is written to the file until it is known to be an Elspeth response cache or a new,
        empty database: any other SQLite file (a run store, someone's data) is left exactly as it was.

        Raises:
            ElspethError: the file is another kind of file or database, or is corrupted (naming it).
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        create_private(self.path)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise ElspethError(f"cannot open the response cache {self.path}: {exc}") from None
        try:
            self._identify()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses"
                " (key TEXT PRIMARY KEY, created REAL NOT NULL, response TEXT NOT NULL)"
            )
        except ElspethError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ElspethError(
                f"{self.path} is not an Elspeth response cache or is corrupted ({exc}); "
                "give response_cache another path, or move the file aside"
            ) from None

    def _identify(self) -> None:
        """Refuse, by reading only, any file but an empty database or an Elspeth response cache."""
        tables = {name for (name,) in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            return  # a new, empty file
        found = None
        if "meta" in tables:
            try:
                found = self._conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            except sqlite3.OperationalError:  # a table called meta with other columns: someone else's
                found = None
        if found is not None and found[0] == _FORMAT:
            return
        kind = "an Elspeth run store" if found is not None and found[0] == STORE_FORMAT else "an SQLite database"
        holds = f"tables {', '.join(sorted(tables))}" if tables else "a schema of its own"
        raise ElspethError(
            f"{self.path} is {kind} with {holds}, not an Elspeth response cache; give response_cache another "
            "path (its `path` option); the file was not changed"
        )

    def get(self, key: str, ttl_s: float | None) -> LLMResponse | None:
        """The cached response for ``key``, if there is one younger than ``ttl_s``."""
        with self._lock:
            row = self._conn.execute("SELECT created, response FROM responses WHERE key=?", (key,)).fetchone()
        if row is None or (ttl_s is not None and time.time() - row[0] > ttl_s):
            return None
        data = json.loads(row[1])
        return LLMResponse(
            content=data["content"],
            usage=Usage(**data["usage"]),
            model=data.get("model"),
            metrics=data.get("metrics") or {},
            cached=True,
        )

    def put(self, key: str, response: LLMResponse) -> None:
        """Store ``response`` under ``key``."""
        metrics = {k: v for k, v in response.metrics.items() if k != "cost"}
        data = {
            "content": response.content,
            "usage": {
                "prompt_tokens": response.usage.prompt_tokens,
                "completion_tokens": response.usage.completion_tokens,
                "cached_tokens": response.usage.cached_tokens,
            },
            "model": response.model,
            "metrics": metrics,
        }
        blob = json.dumps(data, default=str)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, time.time(), blob))

    def delete(self, key: str) -> bool:
        """Remove the entry under ``key``; True when there was one."""
        with self._lock:
            removed = self._conn.execute("DELETE FROM responses WHERE key=?", (key,)).rowcount
        return bool(removed)

    def stats(self) -> dict[str, Any]:
        """Entries, their size, and the oldest and newest."""
        with self._lock:
            count, size, oldest, newest = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(response)), 0), MIN(created), MAX(created) FROM responses"
            ).fetchone()
        return {"path": str(self.path), "entries": count, "bytes": size, "oldest": oldest, "newest": newest}

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        with self._lock:
            removed = self._conn.execute("DELETE FROM responses").rowcount
            self._conn.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        """Close the file."""
        self._conn.close()


class ResponseCache:
    """Answers a call from a local cache when the same call was made before."""

    name = "response_cache"

    class Options(BaseModel):
        """Options of ``response_cache``."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("elspeth-cache.sqlite", description="the cache file, relative to the output folder")
        ttl_s: float | None = Field(None, gt=0, description="ignore entries older than this many seconds (null: never)")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.file: CacheFile | None = None
        self.hits = 0
        self.misses = 0
        self.discarded = 0

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The cache file, read (and kept) by the run: no sink may replace it."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def open(self, ctx: PluginContext) -> None:
        """Open the cache file."""
        self.file = CacheFile(ctx.output_path(self.options.path))

    def close(self) -> None:
        """Close the cache file."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def lookup(self, key: str) -> LLMResponse | None:
        """The cached answer for ``key``, or None (counted as a hit or a miss)."""
        found = self.file.get(key, self.options.ttl_s) if self.file is not None else None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def store(self, key: str, response: LLMResponse) -> None:
        """Keep a live answer for next time."""
        if self.file is not None:
            self.file.put(key, response)

    def discard(self, key: str) -> None:
        """Forget the answer under ``key``: the caller rejected it, so it must never be replayed."""
        if self.file is not None and self.file.delete(key):
            self.discarded += 1

    def summary(self) -> dict[str, Any]:
        """Hits and misses of this run, and the rejected answers it evicted (when there were any)."""
        out = {"hits": self.hits, "misses": self.misses}
        if self.discarded:
            out["discarded"] = self.discarded
        return out
