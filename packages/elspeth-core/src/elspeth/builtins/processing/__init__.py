"""Builtin processing plugins: ``text_cleaning``, ``schema_validation`` and ``pii_redaction``.

Processors run on every row before the orchestrator's own work (settings ``processors: [...]``), in
the order listed; a processor that raises fails that row alone, with the processor's message.
"""

from __future__ import annotations

from elspeth.builtins.processing.redaction import PiiRedaction
from elspeth.builtins.processing.schema import SchemaValidation, SchemaViolation
from elspeth.builtins.processing.text import TextCleaning, strip_html
from elspeth.hookspecs import Registrar, hookimpl

__all__ = ["PiiRedaction", "SchemaValidation", "SchemaViolation", "TextCleaning", "register_processors", "strip_html"]


@hookimpl
def register_processors(register: Registrar) -> None:
    """Register the builtin processors."""
    register(TextCleaning)
    register(SchemaValidation)
    register(PiiRedaction)
