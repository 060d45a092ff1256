"""Elspeth's processing plugins: ``text_cleaning``, ``schema_validation`` and ``pii_redaction``.

Processors run on every row before the orchestrator's own work (settings ``processors: [...]``), in
the order listed; a processor that raises fails that row alone, with the processor's message::

    processors:
      - {plugin: text_cleaning, options: {strip_html: true, columns: [review]}}
      - {plugin: pii_redaction, options: {columns: [review]}}
      - {plugin: schema_validation, options: {schema_path: schemas/row.json}}
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_processors.redaction import PiiRedaction
    from elspeth_processors.schema import SchemaValidation, SchemaViolation
    from elspeth_processors.text import TextCleaning, strip_html

# names load on first use, so that importing the package (its entry point is ``elspeth_processors.plugin``) stays cheap
_LAZY = {
    "PiiRedaction": "elspeth_processors.redaction",
    "SchemaValidation": "elspeth_processors.schema",
    "SchemaViolation": "elspeth_processors.schema",
    "TextCleaning": "elspeth_processors.text",
    "strip_html": "elspeth_processors.text",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

__all__ = ["PiiRedaction", "SchemaValidation", "SchemaViolation", "TextCleaning", "strip_html"]
