"""Elspeth's validation orchestrator: every row checked against rules, no LLM call; valid rows and rejects.

The orchestrator is registered through the entry point ``validation = "elspeth_validation.plugin"``;
settings name it as ``orchestrator: {plugin: validation, options: {...}}``.
"""

from elspeth_validation.verdicts import Rejected

__version__ = "0.1.0"

__all__ = ["Rejected", "__version__"]
