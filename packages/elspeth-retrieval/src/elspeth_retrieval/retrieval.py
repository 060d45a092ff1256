"""The ``retrieval`` utility: adds passages from a local corpus to every row, for the prompt to use.

The corpus is indexed with SQLite's FTS5 full-text engine (part of Python's ``sqlite3``; no server)
and ranked with BM25. FTS5's ``bm25()`` is negative, more negative being better; this module reports
``score = s / (1 + s)`` with ``s = -bm25()``: 0 means no match, the score grows towards 1 as a passage
matches more (and rarer) query terms, and the order is BM25's order. Scores depend on the corpus (a
term's weight comes from how many passages hold it), so choose ``min_score`` by looking at the scores
of a few rows in ``<field>_sources``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import DeclaredPath, PluginError, output_target, replace_file
from elspeth_retrieval._search import chunks as _chunks
from elspeth_retrieval._search import fts5_sqlite as _sqlite
from elspeth_retrieval._search import fts_query, normalise_score

if TYPE_CHECKING:
    import sqlite3

    from elspeth import PluginContext, PromptTemplate

__all__ = ["Retrieval", "fts_query", "normalise_score"]

_FORMAT = "elspeth-retrieval-1"  # bump when the index layout changes, so old index files are rebuilt


class Retrieval:
    """Adds the best-matching passages of a local corpus (SQLite FTS5, BM25) to every row, as `context`."""

    name = "retrieval"
    endpoints: tuple[str, ...] = ()  # a local SQLite index: no service to check against `allowed_endpoints`

    class Options(BaseModel):
        """Options of ``retrieval``."""

        model_config = ConfigDict(extra="forbid")

        corpus_path: str = Field(
            description="a folder of text/markdown files, or a CSV or JSONL file, relative to the settings file"
        )
        query_template: str = Field(description='Jinja2 template over the row giving the query, e.g. "{{ question }}"')
        top_k: int = Field(3, ge=1, le=100, description="at most this many passages per row")
        min_score: float = Field(
            0.0, ge=0.0, lt=1.0, description="drop passages scoring below this (score = s/(1+s), s = -bm25)"
        )
        field: str = Field("context", description="the field added to the row; `<field>_sources` is added too")
        separator: str = Field("\n\n", description="put between passages in the added field")
        text_column: str = Field("text", description="CSV/JSONL corpus: the column holding the text")
        id_column: str | None = Field(None, description="CSV/JSONL corpus: the column holding an id (default: FILE:N)")
        extensions: list[str] = Field(
            [".txt", ".md", ".markdown", ".rst"], description="folder corpus: the file endings indexed"
        )
        chunk_chars: int = Field(
            1200, ge=0, description="split text files at blank lines into passages of about this size (0: whole file)"
        )
        index_path: str | None = Field(
            "retrieval-index.sqlite", description="the index file, relative to the output folder (null: in memory)"
        )
        stemming: bool = Field(False, description="English stemming (Porter): 'running' matches 'run'")
        match: Literal["any", "all"] = Field("any", description="a passage must hold any or all query words")
        stopwords: bool = Field(True, description="ignore common English words in queries")

        @field_validator("query_template")
        @classmethod
        def _compiles(cls, value: str) -> str:
            from elspeth import TemplateError, compile_template

            try:
                compile_template(value)
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
            return value

        @field_validator("field")
        @classmethod
        def _identifier(cls, value: str) -> str:
            if not value.isidentifier():
                raise ValueError(f"{value!r} is not a name a template can use (letters, digits and _)")
            return value

    def __init__(self, options: Options) -> None:
        from elspeth import compile_template

        self.options = options
        self.query: PromptTemplate = compile_template(options.query_template)
        self.adds_fields = (options.field, f"{options.field}_sources")
        # checked against the rows' fields before any row, and reported at query_template's line
        self.needs_fields = {"query_template": tuple(sorted(self.query.fields))}
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {"passages": 0, "index": "", "fingerprint": "", "queries": 0, "no_match": 0}

    # ---- the corpus ---------------------------------------------------------------------------

    def _files(self, root: Path) -> list[Path]:
        if root.is_file():
            return [root]
        endings = tuple(e.lower() for e in self.options.extensions)
        return sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.name.lower().endswith(endings)
            # hidden below the corpus folder, not above it: a corpus may itself live under ~/.cache or .nox
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )

    def _fingerprint(self, root: Path, files: list[Path]) -> str:
        opts = self.options
        digest = hashlib.sha256(
            json.dumps(
                [_FORMAT, opts.text_column, opts.id_column, opts.chunk_chars, opts.stemming, opts.extensions]
            ).encode()
        )
        for path in files:
            digest.update(b"\0" + str(path.relative_to(root) if path != root else path.name).encode() + b"\0")
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        return digest.hexdigest()

    def _passages(self, root: Path, files: list[Path]) -> Iterator[tuple[str, str]]:
        for path in files:
            suffix = path.suffix.lower()
            if root.is_file() and suffix == ".csv":
                yield from self._csv(path)
            elif root.is_file() and suffix in (".jsonl", ".ndjson"):
                yield from self._jsonl(path)
            else:
                name = path.name if path == root else path.relative_to(root).as_posix()
                chunks = _chunks(path.read_text(encoding="utf-8-sig", errors="replace"), self.options.chunk_chars)
                for n, chunk in enumerate(chunks, 1):
                    yield (f"{name}#{n}" if len(chunks) > 1 else name), chunk

    def _record(self, record: Mapping[str, Any], where: str, default_id: str) -> tuple[str, str] | None:
        opts = self.options
        if opts.text_column not in record:
            raise PluginError(
                f"retrieval: {where} has no column '{opts.text_column}' (options.text_column); "
                f"it has: {', '.join(map(str, record)) or 'none'}"
            )
        if opts.id_column is not None and opts.id_column not in record:
            raise PluginError(f"retrieval: {where} has no column '{opts.id_column}' (options.id_column)")
        text = record[opts.text_column]
        if text is None or not str(text).strip():
            return None
        doc_id = str(record[opts.id_column]) if opts.id_column is not None else default_id
        return doc_id, str(text).strip()

    def _csv(self, path: Path) -> Iterator[tuple[str, str]]:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for n, row in enumerate(csv.DictReader(handle), 1):
                found = self._record(row, f"{path.name} row {n}", f"{path.name}:{n}")
                if found is not None:
                    yield found

    def _jsonl(self, path: Path) -> Iterator[tuple[str, str]]:
        with path.open(encoding="utf-8-sig") as handle:
            for n, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PluginError(f"retrieval: {path.name} line {n} is not JSON: {exc.msg}") from None
                if not isinstance(record, dict):
                    raise PluginError(f"retrieval: {path.name} line {n} is not a JSON object")
                found = self._record(record, f"{path.name} line {n}", f"{path.name}:{n}")
                if found is not None:
                    yield found

    # ---- the index ----------------------------------------------------------------------------

    def _build(self, sqlite3: Any, target: str, root: Path, files: list[Path], fingerprint: str) -> Any:
        tokenizer = "porter unicode61 remove_diacritics 2" if self.options.stemming else "unicode61 remove_diacritics 2"
        db = sqlite3.connect(target, check_same_thread=False)
        try:
            db.execute(f"CREATE VIRTUAL TABLE passages USING fts5(doc_id UNINDEXED, body, tokenize='{tokenizer}')")
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            db.executemany("INSERT INTO passages (doc_id, body) VALUES (?, ?)", self._passages(root, files))
            count = db.execute("SELECT count(*) FROM passages").fetchone()[0]
            if count == 0:
                raise PluginError(
                    f"retrieval: options.corpus_path '{self.options.corpus_path}' holds no text to index "
                    f"(looked in {root} for {', '.join(self.options.extensions) if root.is_dir() else 'text'})"
                )
            db.executemany("INSERT INTO meta VALUES (?, ?)", [("fingerprint", fingerprint), ("passages", str(count))])
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _reuse(self, sqlite3: Any, path: Path, fingerprint: str) -> Any:
        if not path.is_file():
            return None
        try:
            db = sqlite3.connect(path, check_same_thread=False)
            row = db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        except sqlite3.DatabaseError:
            return None
        if row is None or row[0] != fingerprint:
            db.close()
            return None
        return db

    def input_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The corpus (a file or a folder): no output of the run may replace it."""
        return [DeclaredPath("corpus_path", ctx.input_path(self.options.corpus_path))]

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The index file, when there is one."""
        path = self.options.index_path
        return [DeclaredPath("index_path", output_target(ctx, path))] if path is not None else []

    def open(self, ctx: PluginContext) -> None:
        """Index the corpus, or reuse the index file if the corpus and indexing options have not changed."""
        sqlite3 = _sqlite()
        opts = self.options
        root = ctx.input_path(opts.corpus_path)
        if not root.exists():
            raise PluginError(f"retrieval: options.corpus_path '{opts.corpus_path}' does not exist (looked for {root})")
        files = self._files(root)
        fingerprint = self._fingerprint(root, files)
        self._stats["fingerprint"] = fingerprint[:12]
        if opts.index_path is None:
            self._db = self._build(sqlite3, ":memory:", root, files, fingerprint)
            self._stats["index"] = "memory"
        else:
            path = ctx.output_path(opts.index_path)
            self._db = self._reuse(sqlite3, path, fingerprint)
            self._stats["index"] = "reused"
            if self._db is None:
                temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                temp.unlink(missing_ok=True)
                try:
                    self._build(sqlite3, str(temp), root, files, fingerprint).close()
                    replace_file(temp, path)  # readers never see a half-built index; only a regular file is replaced
                finally:
                    temp.unlink(missing_ok=True)
                self._db = sqlite3.connect(path, check_same_thread=False)
                self._stats["index"] = "built"
        assert self._db is not None
        self._stats["passages"] = int(self._db.execute("SELECT value FROM meta WHERE key = 'passages'").fetchone()[0])

    def close(self) -> None:
        """Close the index."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- per row ------------------------------------------------------------------------------

    def search(self, text: str) -> list[dict[str, Any]]:
        """The passages best matching ``text``: dicts with ``id``, ``score`` and ``text``, best first."""
        if self._db is None:
            raise RuntimeError("retrieval was not opened: its corpus has not been indexed")
        opts = self.options
        query = fts_query(text, opts.match, opts.stopwords)
        hits: list[dict[str, Any]] = []
        if query is not None:
            with self._lock:
                rows = self._db.execute(
                    "SELECT doc_id, body, bm25(passages) FROM passages WHERE passages MATCH ? "
                    "ORDER BY bm25(passages), rowid LIMIT ?",
                    (query, opts.top_k),
                ).fetchall()
            hits = [{"id": d, "score": round(normalise_score(b), 4), "text": t} for d, t, b in rows]
            hits = [h for h in hits if h["score"] >= opts.min_score]
        with self._lock:
            self._stats["queries"] += 1
            self._stats["no_match"] += not hits
        return hits

    def enrich(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the row with ``<field>`` (the passages, joined) and ``<field>_sources`` (their ids and scores)."""
        try:
            text = self.query.render(data)
        except Exception as exc:  # a row the query template cannot render fails on its own, with the reason
            raise ValueError(f"retrieval: options.query_template: {exc}") from None
        hits = self.search(text)
        field = self.options.field
        return {
            **data,
            field: self.options.separator.join(h["text"] for h in hits),
            f"{field}_sources": [{"id": h["id"], "score": h["score"]} for h in hits],
        }

    def summary(self) -> dict[str, Any]:
        """Passages indexed, whether the index was built or reused, queries run and queries with no match."""
        with self._lock:
            return dict(self._stats)
