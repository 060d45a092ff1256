"""Entry point of ``elspeth-orchestrator-streaming``: the ``streaming`` orchestrator, ``jsonl_stream`` source and sink.

Imports only ``elspeth``, so ``elspeth plugins list`` stays fast; the plugins are registered by
reference and their modules load when a run first uses them.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``streaming`` orchestrator."""
    register(
        "elspeth_streaming.orchestrator:StreamingOrchestrator",
        name="streaming",
        description="Each message of an endless source through processors and an optional LLM call, emitted to "
        "streaming sinks as it finishes; committed, emitted and acknowledged exactly once in effect.",
    )


@hookimpl
def register_datasources(register: Registrar) -> None:
    """Register the ``jsonl_stream`` datasource."""
    register(
        "elspeth_streaming.jsonl_source:JsonlStream",
        name="jsonl_stream",
        description="JSON Lines messages from standard input or from a file, optionally followed as it grows.",
    )


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``jsonl_stream`` sink."""
    register(
        "elspeth_streaming.jsonl_sink:JsonlStreamSink",
        name="jsonl_stream",
        description="Each result as a JSON line as soon as it is done, in files rotated by size or time.",
    )
