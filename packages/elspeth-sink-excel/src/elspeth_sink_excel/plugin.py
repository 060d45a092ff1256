"""Entry point of ``elspeth-sink-excel``: registers the ``excel`` sink.

Imports only ``elspeth``: the sink is registered by reference and loads when first used, openpyxl when a
workbook is written, so ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``excel`` sink."""
    register(
        "elspeth_sink_excel.sink:ExcelSink",
        name="excel",
        description="An Excel workbook: results, failures, aggregates, comparisons and a manifest, formula-safe.",
    )
