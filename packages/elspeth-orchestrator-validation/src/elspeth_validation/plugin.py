"""Entry point of ``elspeth-orchestrator-validation``: registers the ``validation`` orchestrator.

Imports only ``elspeth``, so ``elspeth plugins list`` stays fast; the orchestrator is registered by
reference and its module loads when a run (or ``validate``, ``plugins show``) first uses it.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``validation`` orchestrator."""
    register(
        "elspeth_validation.orchestrator:ValidationOrchestrator",
        name="validation",
        description="Checks every row against built-in rules and rule plugins without any LLM; valid rows and rejects.",
    )
