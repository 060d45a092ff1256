"""Free text to a safe FTS5 query, BM25 to a score, text to passages, and a ``sqlite3`` that has FTS5."""

from __future__ import annotations

import re
from typing import Any, Literal

from elspeth import PluginError

__all__ = ["chunks", "fts5_sqlite", "fts_query", "normalise_score"]

_MAX_TERMS = 64
_TERM = re.compile(r"\w+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def fts_query(text: str, match: Literal["any", "all"] = "any", stopwords: bool = True) -> str | None:
    """An FTS5 query for free text: every word quoted, so no user text can be FTS5 syntax.

    Words are Unicode letters and digits; English stopwords are dropped unless nothing else is left.
    Returns None when ``text`` holds no word.
    """
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    if stopwords:
        terms = [t for t in terms if t not in _STOPWORDS] or terms
    if not terms:
        return None
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms[:_MAX_TERMS]]
    return (" AND " if match == "all" else " OR ").join(quoted)


def normalise_score(bm25: float) -> float:
    """Map FTS5's ``bm25()`` (negative, lower is better) onto [0, 1): ``s / (1 + s)`` with ``s = -bm25``."""
    s = max(-bm25, 0.0)
    return s / (1.0 + s)


def fts5_sqlite() -> Any:
    """Python's ``sqlite3``, once it is known to have the FTS5 extension (a plugin error naming the fix if not)."""
    import sqlite3

    try:
        probe = sqlite3.connect(":memory:")
        try:
            probe.execute("CREATE VIRTUAL TABLE probe USING fts5(body)")
        finally:
            probe.close()
    except sqlite3.OperationalError as exc:
        raise PluginError(
            f"retrieval needs SQLite's FTS5 full-text extension, which this Python's sqlite3 (SQLite "
            f"{sqlite3.sqlite_version}) lacks ({exc}): use a Python whose SQLite is built with FTS5, as the "
            "python.org, conda and most Linux distributions' builds are"
        ) from None
    return sqlite3


def chunks(text: str, limit: int) -> list[str]:
    """``text`` cut at blank lines into passages of at most ``limit`` characters (one passage if ``limit`` <= 0)."""
    text = text.strip()
    if not text:
        return []
    if limit <= 0:
        return [text]
    chunks: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in _PARAGRAPH.split(text)):
        if current and len(current) + 2 + len(paragraph) > limit:
            chunks.append(current)
            current = paragraph
        else:
            current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks
