"""Elspeth's Excel sink: one ``.xlsx`` workbook per run, safe to open in a spreadsheet program.

Configure it in the settings' ``sinks``::

    sinks:
      - plugin: excel
        options:
          path: results.xlsx
"""

from elspeth_sink_excel.sink import ExcelSink

__version__ = "0.1.0"

__all__ = ["ExcelSink"]
