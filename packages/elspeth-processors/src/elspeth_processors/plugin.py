"""Entry point of ``elspeth-processors``: registers ``text_cleaning``, ``schema_validation`` and ``pii_redaction``.

Processors run on every row before the orchestrator's own work (settings ``processors: [...]``), in
the order listed; a processor that raises fails that row alone, with the processor's message.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_processors.redaction import PiiRedaction
from elspeth_processors.schema import SchemaValidation
from elspeth_processors.text import TextCleaning

__all__ = ["register_processors"]


@hookimpl
def register_processors(register: Registrar) -> None:
    """Register the processors of ``elspeth-processors``."""
    register(TextCleaning)
    register(SchemaValidation)
    register(PiiRedaction)
