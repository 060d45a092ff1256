"""Builtin sinks: ``csv``, ``jsonl`` and ``json`` files. Every file is written atomically."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from elspeth.datatypes import Artifact, Failure, Record, RunResult, flatten
from elspeth.files import jsonl_lines, to_json, write_atomically
from elspeth.orchestration.plugin_context import PluginContext
from elspeth.outputs import DeclaredPath, output_target
from elspeth.spreadsheet import SanitizeOptions, neutralise_formula, warn_unsanitised

T = TypeVar("T")


def record_row(record: Record) -> dict[str, Any]:
    """A record as one flat row: id, group, inputs, outputs, then metrics with dotted names.

    An output or metric whose name is already taken gets an ``output.`` or ``metric.`` prefix.
    """
    row: dict[str, Any] = {"row_id": record.row_id}
    if record.group is not None:
        row["experiment"] = record.group
    row.update(record.inputs)
    for prefix, values in (("output.", record.outputs), ("metric.", flatten(record.metrics))):
        for key, value in values.items():
            row[f"{prefix}{key}" if key in row else key] = value
    return row


def failure_row(failure: Failure) -> dict[str, Any]:
    """A failure as one flat row: inputs, then ``failure.`` stage, error, attempts, output and metric columns.

    After the id, group and inputs come ``failure.stage``, ``failure.error``, ``failure.attempts``,
    ``failure.output.<key>`` and ``failure.metric.<name>``. The output columns hold what the row
    produced before it failed (the reply that did not parse, the rule violations), so a failure can be
    understood from the failures file alone; the metric columns what it cost before it failed
    (latency, tokens, cost), dotted as in records.
    """
    row: dict[str, Any] = {"row_id": failure.row_id}
    if failure.group is not None:
        row["experiment"] = failure.group
    row.update(failure.inputs)
    row["failure.stage"] = failure.stage
    row["failure.error"] = failure.error
    row["failure.attempts"] = len(failure.attempts)
    for key, value in (failure.output or {}).items():
        row[f"failure.output.{key}"] = value
    for key, value in flatten(failure.metrics or {}).items():
        row[f"failure.metric.{key}"] = value
    return row


def _nested(value: Any, level: int) -> str:
    """``value`` as indented JSON that starts at nesting ``level`` (JSON strings never hold a raw newline)."""
    return to_json(value, indent=2).replace("\n", "\n" + "  " * level)


def _write_document(handle: IO[str], doc: dict[str, Any]) -> None:
    """Write ``doc`` exactly as ``to_json(doc, indent=2)`` plus a newline would, streaming its generator values.

    A value that is a generator is written as a JSON array one item at a time, so a document listing
    every failure or record of a large run never holds them all in memory.
    """
    handle.write("{")
    for n, (key, value) in enumerate(doc.items()):
        handle.write(("," if n else "") + "\n  " + to_json(key) + ": ")
        if not isinstance(value, Iterator):
            handle.write(_nested(value, 1))
            continue
        empty = True
        for item in value:
            handle.write(("[" if empty else ",") + "\n    " + _nested(item, 2))
            empty = False
        handle.write("[]" if empty else "\n  ]")
    handle.write("\n}\n" if doc else "}\n")


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return to_json(value)
    return value


class CsvSink:
    """Records as a CSV file, one row per record; failures optionally in a second file."""

    name = "csv"

    class Options(SanitizeOptions):
        """Options of the ``csv`` sink.

        Formula neutralisation (``sanitize_formulas``, ``sanitize_guard``) follows
        :mod:`elspeth.spreadsheet`; headers and cells are both neutralised.
        """

        model_config = ConfigDict(extra="forbid")

        path: str = Field("results.csv", description="the CSV file, relative to the output folder")
        failures_path: str | None = Field(None, description="also write failures to this CSV file")

    def __init__(self, options: Options) -> None:
        self.options = options

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The CSV file and, if asked, the failures file."""
        paths = [DeclaredPath("path", output_target(ctx, self.options.path))]
        if self.options.failures_path:
            paths.append(DeclaredPath("failures_path", output_target(ctx, self.options.failures_path)))
        return paths

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the records (and failures, if asked)."""
        path = ctx.output_path(self.options.path)
        if not self.options.sanitize_formulas:
            warn_unsanitised(ctx.logger, self.name, path)
        written = [self._write(path, result.records, record_row)]
        if self.options.failures_path:
            written.append(self._write(ctx.output_path(self.options.failures_path), result.failures, failure_row))
        return written

    def _write(self, path: Path, items: Iterable[T], as_row: Callable[[T], dict[str, Any]]) -> Artifact:
        # two passes over ``items`` (a list or a disk-backed spool): the columns, then the rows, so
        # that no list of every row is ever built
        columns = _columns(as_row(item) for item in items) or ["row_id"]
        safe: Callable[[Any], Any] = (
            partial(neutralise_formula, guard=self.options.sanitize_guard)
            if self.options.sanitize_formulas
            else (lambda value: value)
        )

        def dump(handle: IO[str]) -> None:
            writer = csv.writer(handle)
            writer.writerow([safe(c) for c in columns])
            for item in items:
                row = as_row(item)
                writer.writerow([safe(_cell(row.get(c))) for c in columns])

        write_atomically(path, dump)
        return Artifact(path, "text/csv", self.name)


class JsonlSink:
    """Records and failures as JSON Lines, one object per row with a ``status`` of ``ok`` or ``failed``."""

    name = "jsonl"

    class Options(BaseModel):
        """Options of the ``jsonl`` sink."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("results.jsonl", description="the JSON Lines file, relative to the output folder")
        include_failures: bool = Field(True, description="write failed rows too, with status 'failed'")

    def __init__(self, options: Options) -> None:
        self.options = options

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The file this sink writes."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write one line per record, then one per failure."""
        path = ctx.output_path(self.options.path)

        def dump(handle: IO[str]) -> None:
            handle.writelines(jsonl_lines(result, self.options.include_failures))

        write_atomically(path, dump)
        return [Artifact(path, "application/jsonl", self.name)]


class JsonSummarySink:
    """The run's metadata, aggregates and failures as one JSON document."""

    name = "json"

    class Options(BaseModel):
        """Options of the ``json`` sink."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("summary.json", description="the JSON file, relative to the output folder")
        include_records: bool = Field(False, description="also include every record")

    def __init__(self, options: Options) -> None:
        self.options = options

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The file this sink writes."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the summary document."""
        path = ctx.output_path(self.options.path)
        doc: dict[str, Any] = {
            "metadata": result.metadata.to_dict(),
            "aggregates": result.aggregates,
            "failures": (failure_row(f) | {"attempts": f.attempts} for f in result.failures),
        }
        if self.options.include_records:
            doc["records"] = (record_row(r) for r in result.records)

        def dump(handle: IO[str]) -> None:
            _write_document(handle, doc)

        write_atomically(path, dump)
        return [Artifact(path, "application/json", self.name)]
