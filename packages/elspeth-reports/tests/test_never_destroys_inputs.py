"""The report sinks declare their files and never replace a device or FIFO (issue 12, point 1)."""

from __future__ import annotations

import os

import pytest

from elspeth import DeclaredPath, ElspethError, PluginContext, WritesFiles
from elspeth_reports import AnalyticsReportSink, VisualReportSink
from elspeth_testing import sample_run_result


def test_each_report_file_is_declared(ctx: PluginContext) -> None:
    analytics = AnalyticsReportSink(AnalyticsReportSink.Options(file_stem="../r", formats=["json", "md"]))
    visual = VisualReportSink(VisualReportSink.Options(path="v.html"))
    assert isinstance(analytics, WritesFiles)
    assert isinstance(visual, WritesFiles)
    up = ctx.output_dir.parent.resolve()
    expected = [DeclaredPath("file_stem", up / "r.json"), DeclaredPath("file_stem", up / "r.md")]
    assert analytics.output_paths(ctx) == expected
    assert visual.output_paths(ctx) == [DeclaredPath("path", (ctx.output_dir / "v.html").resolve())]


def test_a_fifo_in_place_of_a_report_is_never_replaced(ctx: PluginContext) -> None:
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(ctx.output_dir / "v.html")
    with pytest.raises(ElspethError, match="not a regular file"):
        VisualReportSink(VisualReportSink.Options(path="v.html")).write(sample_run_result(), ctx)
    assert (ctx.output_dir / "v.html").is_fifo()
