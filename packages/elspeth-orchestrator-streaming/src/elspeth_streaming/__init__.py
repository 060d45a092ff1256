"""Elspeth's streaming orchestrator: each message of an endless source through the row runner, emitted as it finishes.

The entry point ``streaming = "elspeth_streaming.plugin"`` registers the ``streaming`` orchestrator
and the ``jsonl_stream`` datasource (standard input, or a file followed as it grows) and sink (JSON
Lines files rotated by size or time).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
