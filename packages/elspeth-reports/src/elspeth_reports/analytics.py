"""The ``analytics_report`` sink: the run's figures as JSON and/or Markdown."""

from __future__ import annotations

from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import Artifact, DeclaredPath, PluginContext, RunResult, output_target

__all__ = ["AnalyticsReportSink"]

Format = Literal["json", "md"]
_DEFAULT_FORMATS: list[Format] = ["json", "md"]
_MEDIA = {"json": "application/json", "md": "text/markdown"}


class AnalyticsReportSink:
    """A summary to read or send on: rows, failures, retries, cost, aggregates, baseline comparisons, recommendation."""

    name = "analytics_report"

    class Options(BaseModel):
        """Options of the ``analytics_report`` sink."""

        model_config = ConfigDict(extra="forbid")

        file_stem: str = Field(
            "analytics_report",
            min_length=1,
            description="file name without extension, relative to the output folder; one file per format",
        )
        formats: list[Format] = Field(
            default_factory=lambda: list(_DEFAULT_FORMATS), min_length=1, description="any of: json, md"
        )
        failure_examples: int = Field(5, ge=0, le=10_000, description="failures shown with row id, stage and error")
        include_metadata: bool = Field(True, description="add the run metadata: plugins, timings, extra facts")
        include_aggregates: bool = Field(True, description="add every experiment's aggregates as they came")
        include_comparisons: bool = Field(True, description="add the comparisons of each variant with the baseline")

        @field_validator("formats")
        @classmethod
        def _unique(cls, value: list[Format]) -> list[Format]:
            return list(dict.fromkeys(value))

        @field_validator("file_stem")
        @classmethod
        def _stem(cls, value: str) -> str:
            if value.endswith(("/", "\\")) or value.lower().endswith((".json", ".md")):
                raise ValueError(f"give a file name without extension (the sink adds .json and .md), got {value!r}")
            return value

    def __init__(self, options: Options) -> None:
        self.options = options

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """One file per format."""
        stem = self.options.file_stem
        return [DeclaredPath("file_stem", output_target(ctx, f"{stem}.{fmt}")) for fmt in self.options.formats]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write one file per format, each atomically."""
        from elspeth import to_json, write_atomically
        from elspeth_reports.markdown import render_markdown
        from elspeth_reports.summary import build_summary

        opts = self.options
        summary = build_summary(
            result,
            failure_examples=opts.failure_examples,
            include_metadata=opts.include_metadata,
            include_aggregates=opts.include_aggregates,
            include_comparisons=opts.include_comparisons,
        )
        artifacts = []
        for fmt in opts.formats:
            path = ctx.output_path(f"{opts.file_stem}.{fmt}")
            text = to_json(summary, indent=2) + "\n" if fmt == "json" else render_markdown(summary)

            def dump(handle: IO[str], text: str = text) -> None:
                handle.write(text)

            write_atomically(path, dump)
            artifacts.append(Artifact(path, _MEDIA[fmt], self.name))
        return artifacts
