"""Elspeth's Excel sink: one ``.xlsx`` workbook per run, safe to open in a spreadsheet program.

Configure it in the settings' ``sinks``::

    sinks:
      - plugin: excel
        options:
          path: results.xlsx
"""

import importlib
from typing import TYPE_CHECKING, Any

from elspeth_sink_excel.__about__ import __version__ as __version__

if TYPE_CHECKING:
    from elspeth_sink_excel.sink import ExcelSink

# names load on first use, so that importing the package (its entry point is ``elspeth_sink_excel.plugin``) stays cheap
_LAZY = {
    "ExcelSink": "elspeth_sink_excel.sink",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth_sink_excel' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["ExcelSink"]
