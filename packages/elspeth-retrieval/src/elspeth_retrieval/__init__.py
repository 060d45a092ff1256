"""Elspeth's ``retrieval`` utility: passages from a local corpus added to every row, for the prompt to use.

Configure it in the settings' ``utilities``::

    utilities:
      - {plugin: retrieval, options: {corpus_path: kb/, query_template: "{{ question }}", top_k: 3}}
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_retrieval.retrieval import Retrieval, fts_query, normalise_score

# names load on first use, so that importing the package (its entry point is ``elspeth_retrieval.plugin``) stays cheap
_LAZY = {
    "Retrieval": "elspeth_retrieval.retrieval",
    "fts_query": "elspeth_retrieval.retrieval",
    "normalise_score": "elspeth_retrieval.retrieval",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = ["Retrieval", "fts_query", "normalise_score"]
