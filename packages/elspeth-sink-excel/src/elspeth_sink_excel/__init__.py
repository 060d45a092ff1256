"""Elspeth's Excel sink: one ``.xlsx`` workbook per run, safe to open in a spreadsheet program.

Configure it in the settings' ``sinks``::

    sinks:
      - plugin: excel
        options:
          path: results.xlsx
"""

from elspeth_sink_excel.__about__ import __version__ as __version__
from elspeth_sink_excel.sink import ExcelSink

__all__ = ["ExcelSink"]
