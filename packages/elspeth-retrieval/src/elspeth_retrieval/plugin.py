"""Entry point of ``elspeth-retrieval``: registers the ``retrieval`` utility."""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_retrieval.retrieval import Retrieval

__all__ = ["register_utilities"]


@hookimpl
def register_utilities(register: Registrar) -> None:
    """Register the ``retrieval`` utility."""
    register(Retrieval)
