"""Entry point of ``elspeth-retrieval``: registers the ``retrieval`` utility."""

from __future__ import annotations

from elspeth import Registrar, hookimpl

__all__ = ["register_utilities"]


@hookimpl
def register_utilities(register: Registrar) -> None:
    """Register the ``retrieval`` utility."""
    register(
        "elspeth_retrieval.retrieval:Retrieval",
        name="retrieval",
        description="Adds the best-matching passages of a local corpus (SQLite FTS5, BM25) to every row, as `context`.",
    )
