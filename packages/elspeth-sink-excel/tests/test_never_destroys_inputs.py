"""The excel sink declares its workbook and never replaces a device or FIFO (issue 12, point 1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elspeth import DeclaredPath, ElspethError, PluginContext, RunMetadata, RunResult, WritesFiles
from elspeth_sink_excel import ExcelSink


def test_the_workbook_is_declared_resolved_without_creating_anything(ctx: PluginContext) -> None:
    sink = ExcelSink(ExcelSink.Options(path="../up/r.xlsx"))
    assert isinstance(sink, WritesFiles)
    assert sink.output_paths(ctx) == [DeclaredPath("path", (ctx.output_dir / "../up/r.xlsx").resolve())]
    assert not ctx.output_dir.exists()


def test_a_fifo_in_place_of_the_workbook_is_never_replaced(ctx: PluginContext) -> None:
    ctx.output_dir.mkdir()
    fifo = ctx.output_dir / "r.xlsx"
    os.mkfifo(fifo)
    result = RunResult(records=[], failures=[], aggregates={}, metadata=RunMetadata("r", "n", "rows"))
    with pytest.raises(ElspethError, match="not a regular file"):
        ExcelSink(ExcelSink.Options(path="r.xlsx")).write(result, ctx)
    assert Path(fifo).is_fifo()
    assert sorted(p.name for p in ctx.output_dir.iterdir()) == ["r.xlsx"]  # no temporary file left
