"""The ``excel`` sink: one workbook with Results, Failures, Aggregates, Comparisons and Manifest sheets."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, field_validator

from elspeth import (
    Artifact,
    DeclaredPath,
    PluginContext,
    PluginError,
    RunResult,
    SanitizeOptions,
    disk_full,
    output_target,
    replace_file,
    warn_unsanitised,
)
from elspeth_sink_excel.sheets import (
    Sheet,
    aggregates_sheet,
    comparisons_sheet,
    failures_sheet,
    manifest_sheet,
    results_sheet,
)

if TYPE_CHECKING:
    from openpyxl import Workbook  # type: ignore[import-untyped,unused-ignore]  # typed only with types-openpyxl

__all__ = ["MAX_ROWS", "XLSX_MEDIA_TYPE", "ExcelSink"]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 1_048_576
"""Excel's limit on rows per sheet, the header row included."""

_VERSION = "0.1.0"


def _discard(workbook: Workbook) -> None:
    # A write-only sheet streams into a generator; close each one now rather than leave it to the garbage
    # collector, which would report "Exception ignored" on stderr after the real error.
    for ws in workbook.worksheets:
        with contextlib.suppress(Exception):
            ws.close()


class ExcelSink:
    """An Excel workbook: results, failures, aggregates, comparisons and a manifest, formula-safe."""

    name = "excel"

    class Options(SanitizeOptions):
        """Options of the ``excel`` sink.

        Every text cell, headers included, is neutralised as :mod:`elspeth.spreadsheet` describes
        unless ``sanitize_formulas`` is false. Even then text is stored as text, never as a formula.
        """

        model_config = ConfigDict(extra="forbid")

        path: str = Field("results.xlsx", description="the workbook, relative to the output folder")

        @field_validator("path")
        @classmethod
        def _xlsx(cls, value: str) -> str:
            if not value.lower().endswith(".xlsx"):
                raise ValueError(f"must end in .xlsx (Excel opens nothing else written by this sink), got {value!r}")
            return value

    def __init__(self, options: Options) -> None:
        self.options = options

    def sheets(self, result: RunResult) -> list[Sheet]:
        """The workbook's sheets, in order, as plain tables (before any cell is made safe)."""
        written_at = datetime.now(UTC).isoformat(timespec="seconds")
        settings: dict[str, Any] = {
            "Formula sanitisation": "on" if self.options.sanitize_formulas else "off",
            "Sanitisation guard": self.options.sanitize_guard if self.options.sanitize_formulas else None,
            "Workbook written at": written_at,
            "Written by": f"elspeth-sink-excel {_VERSION}",
        }
        return [
            results_sheet(result.records),
            failures_sheet(result.failures),
            aggregates_sheet(result.aggregates),
            comparisons_sheet(result.aggregates),
            manifest_sheet(result.metadata, settings),
        ]

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The workbook."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the workbook atomically (a temporary file in the same folder, then a rename)."""
        path = ctx.output_path(self.options.path)
        sheets = self.sheets(result)
        for sheet in sheets:
            if len(sheet.rows) + 1 > MAX_ROWS:
                raise PluginError(
                    f"sink 'excel' cannot write {path}: sheet {sheet.title} would have {len(sheet.rows):,} rows, "
                    f"more than Excel's {MAX_ROWS - 1:,}; use the csv or jsonl sink for a run this large"
                )
        if not self.options.sanitize_formulas:
            warn_unsanitised(ctx.logger, self.name, path)
        workbook = self._workbook(sheets)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            workbook.save(tmp)
            replace_file(tmp, path)  # only over a regular file: never a device, FIFO or folder
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            _discard(workbook)
            raise disk_full(path, exc) or exc from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            _discard(workbook)
            raise
        return [Artifact(path, XLSX_MEDIA_TYPE, self.name)]

    def _workbook(self, sheets: list[Sheet]) -> Workbook:
        # openpyxl has no inline types: stubs come from types-openpyxl where it is installed.
        from openpyxl import Workbook  # type: ignore[import-untyped,unused-ignore]
        from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped,unused-ignore]
        from openpyxl.styles import Font  # type: ignore[import-untyped,unused-ignore]
        from openpyxl.utils import get_column_letter  # type: ignore[import-untyped,unused-ignore]

        from elspeth_sink_excel.cells import cell_converter, column_widths

        convert = cell_converter(self.options.sanitize_guard if self.options.sanitize_formulas else None)
        bold = Font(bold=True)
        workbook = Workbook(write_only=True)
        for sheet in sheets:
            ws = workbook.create_sheet(sheet.title)
            header = [convert(h) for h in sheet.headers]
            rows = [[convert(v) for v in row] for row in sheet.rows]
            for i, width in enumerate(column_widths(header, rows), start=1):
                ws.column_dimensions[get_column_letter(i)].width = width
            ws.freeze_panes = "A2"
            last = get_column_letter(max(len(header), 1))
            ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"

            def text_cell(value: Any, ws: Any = ws) -> Any:
                # openpyxl stores any string starting with "=" as a formula; text must stay text.
                if isinstance(value, str) and value.startswith("="):
                    cell = WriteOnlyCell(ws, value)
                    cell.data_type = "s"
                    return cell
                return value

            header_cells = []
            for title in header:
                cell = WriteOnlyCell(ws, title)
                cell.data_type = "s"
                cell.font = bold
                header_cells.append(cell)
            ws.append(header_cells)
            for row in rows:
                ws.append([text_cell(v) for v in row])
        return workbook
