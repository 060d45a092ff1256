"""Entry point of ``elspeth-orchestrator-batch``: registers the ``batch`` orchestrator.

Imports only ``elspeth``, so ``elspeth plugins list`` stays fast; the orchestrator is registered by
reference and its module loads when a run (or ``validate``, ``plugins show``) first uses it.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``batch`` orchestrator."""
    register(
        "elspeth_batch.orchestrator:BatchOrchestrator",
        name="batch",
        description="One LLM call per row, its reply mapped to new columns (raw text or JSON fields), streamed "
        "to the sinks.",
    )
