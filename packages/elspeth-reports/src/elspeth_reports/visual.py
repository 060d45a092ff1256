"""The ``visual_report`` sink: one self-contained HTML page with charts and the key figures."""

from __future__ import annotations

from typing import IO

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import Artifact, DeclaredPath, PluginContext, RunResult, output_target

__all__ = ["VisualReportSink"]


class VisualReportSink:
    """One HTML file that opens offline: score distributions, a forest plot of differences, cost and latency charts."""

    name = "visual_report"

    class Options(BaseModel):
        """Options of the ``visual_report`` sink."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("visual_report.html", description="the HTML file, relative to the output folder")
        title: str | None = Field(None, description="the page's heading (default: 'Experiment report: NAME')")
        failure_examples: int = Field(10, ge=0, le=10_000, description="failures listed with row id, stage and error")
        score_field: str = Field(
            "scores", description="the record metric holding scores (per criterion, or one number)"
        )
        latency_field: str = Field("latency_s", description="the record metric holding the row's latency in seconds")
        cost_field: str = Field("cost", description="the record metric holding the row's cost")

        @field_validator("path")
        @classmethod
        def _html(cls, value: str) -> str:
            if not value.lower().endswith((".html", ".htm")):
                raise ValueError(f"must end in .html (browsers open it by its extension), got {value!r}")
            return value

    def __init__(self, options: Options) -> None:
        self.options = options

    def render(self, result: RunResult) -> str:
        """The page as text."""
        from elspeth_reports.page import ChartFields, render_html
        from elspeth_reports.summary import build_summary

        opts = self.options
        summary = build_summary(result, failure_examples=opts.failure_examples, include_metadata=False)
        fields = ChartFields(scores=opts.score_field, latency=opts.latency_field, cost=opts.cost_field)
        return render_html(summary, result, opts.title, fields)

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The HTML page."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the page atomically."""
        from elspeth import write_atomically

        path = ctx.output_path(self.options.path)
        text = self.render(result)

        def dump(handle: IO[str]) -> None:
            handle.write(text)

        write_atomically(path, dump)
        return [Artifact(path, "text/html", self.name)]
