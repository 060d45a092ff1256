"""Entry point of ``elspeth-sink-excel``: registers the ``excel`` sink.

Imports only ``elspeth`` and light local modules; openpyxl is imported when a workbook is written, so
``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_sink_excel.sink import ExcelSink


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``excel`` sink."""
    register(ExcelSink)
