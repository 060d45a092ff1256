"""The sink contract every Elspeth sink passes, read through openpyxl."""

from __future__ import annotations

from openpyxl import load_workbook

from elspeth import Artifact
from elspeth_sink_excel import ExcelSink
from elspeth_testing import SinkContract


class TestExcelSinkContract(SinkContract):
    plugin_class = ExcelSink

    def artifact_text(self, artifact: Artifact) -> str | None:
        book = load_workbook(artifact.path, read_only=True)
        try:
            return "\n".join(
                "\t".join("" if value is None else str(value) for value in row)
                for ws in book.worksheets
                for row in ws.iter_rows(values_only=True)
            )
        finally:
            book.close()
