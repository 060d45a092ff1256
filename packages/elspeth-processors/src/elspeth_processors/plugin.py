"""Entry point of ``elspeth-processors``: registers ``text_cleaning``, ``schema_validation`` and ``pii_redaction``.

Processors run on every row before the orchestrator's own work (settings ``processors: [...]``), in
the order listed; a processor that raises fails that row alone, with the processor's message.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl

__all__ = ["register_processors"]


@hookimpl
def register_processors(register: Registrar) -> None:
    """Register the processors of ``elspeth-processors``."""
    register(
        "elspeth_processors.text:TextCleaning",
        name="text_cleaning",
        description="Normalises Unicode, strips HTML and tidies whitespace in text columns.",
    )
    register(
        "elspeth_processors.schema:SchemaValidation",
        name="schema_validation",
        description="Checks every row against a JSON Schema; a row that fails is recorded as failed, naming "
        "field and rule.",
    )
    register(
        "elspeth_processors.redaction:PiiRedaction",
        name="pii_redaction",
        description="Masks or pseudonymises emails, phones, cards, IBANs, IPs and national ids (checksums checked).",
    )
