"""Elspeth's ``retrieval`` utility: passages from a local corpus added to every row, for the prompt to use.

Configure it in the settings' ``utilities``::

    utilities:
      - {plugin: retrieval, options: {corpus_path: kb/, query_template: "{{ question }}", top_k: 3}}
"""

from elspeth_retrieval.retrieval import Retrieval, fts_query, normalise_score

__version__ = "0.1.0"

__all__ = ["Retrieval", "fts_query", "normalise_score"]
