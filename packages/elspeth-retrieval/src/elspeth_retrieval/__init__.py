"""Elspeth's ``retrieval`` utility: passages from a local corpus added to every row, for the prompt to use.

Configure it in the settings' ``utilities``::

    utilities:
      - {plugin: retrieval, options: {corpus_path: kb/, query_template: "{{ question }}", top_k: 3}}
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth_retrieval.retrieval import Retrieval, fts_query, normalise_score

# names load on first use, so that importing the package (its entry point is ``elspeth_retrieval.plugin``) stays cheap
_LAZY = {
    "Retrieval": "elspeth_retrieval.retrieval",
    "fts_query": "elspeth_retrieval.retrieval",
    "normalise_score": "elspeth_retrieval.retrieval",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth_retrieval' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = ["Retrieval", "fts_query", "normalise_score"]
