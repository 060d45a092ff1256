"""Elspeth's Excel sink: one ``.xlsx`` workbook per run, safe to open in a spreadsheet program.

Configure it in the settings' ``sinks``::

    sinks:
      - plugin: excel
        options:
          path: results.xlsx
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports
from elspeth_sink_excel.__about__ import __version__ as __version__

if TYPE_CHECKING:
    from elspeth_sink_excel.sink import ExcelSink

# names load on first use, so that importing the package (its entry point is ``elspeth_sink_excel.plugin``) stays cheap
_LAZY = {
    "ExcelSink": "elspeth_sink_excel.sink",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["ExcelSink"]
