"""Elspeth's validation orchestrator: every row checked against rules, no LLM call; valid rows and rejects.

The orchestrator is registered through the entry point ``validation = "elspeth_validation.plugin"``;
settings name it as ``orchestrator: {plugin: validation, options: {...}}``.
"""

from elspeth_validation.__about__ import __version__ as __version__
from elspeth_validation.verdicts import Rejected

__all__ = ["Rejected", "__version__"]
