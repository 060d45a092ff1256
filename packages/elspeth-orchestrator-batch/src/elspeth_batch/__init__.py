"""Elspeth's batch orchestrator: one LLM call per row, its reply mapped to new columns, streamed to the sinks.

The orchestrator is registered through the entry point ``batch = "elspeth_batch.plugin"``; settings
name it as ``orchestrator: {plugin: batch, options: {...}}``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
