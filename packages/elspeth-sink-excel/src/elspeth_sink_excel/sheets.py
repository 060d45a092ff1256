"""What goes on each sheet: a run's result laid out as tables with readable headers (no openpyxl here)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from elspeth import Failure, Record, RunMetadata, flatten

__all__ = [
    "Sheet",
    "aggregates_sheet",
    "comparisons_sheet",
    "failures_sheet",
    "manifest_sheet",
    "readable",
    "results_sheet",
]

_UNITS = {"s": "s", "ms": "ms", "usd": "USD", "pct": "%"}


@dataclass
class Sheet:
    """One worksheet: a title, a header row and data rows of plain Python values."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def _words(key: str) -> str:
    words = key.replace("-", " ").replace("_", " ").split()
    if not words:
        return key
    unit = _UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = [*words[:-1], f"({unit})"]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def readable(key: str) -> str:
    """A column title for a dotted metric or output name.

    Example::

        readable("latency_s")  # "Latency (s)"
        readable("scores.default")  # "Scores (default)"
        readable("response")  # "Response"

    """
    head, *rest = key.split(".")
    title = _words(head)
    return f"{title} ({' / '.join(rest)})" if rest else title


def to_text(value: Any) -> str:
    """A list or mapping as compact JSON, for a single cell."""
    return json.dumps(value, ensure_ascii=False, default=str)


class _Columns:
    """Columns gathered from many rows, each with a unique header; the first source of a header keeps it."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def add(self, source: str, key: str, header: str, qualifier: str) -> None:
        if (source, key) in self.keys:
            return
        candidate, n = header, 1
        if candidate.casefold() in self._taken:
            candidate = f"{header} ({qualifier})"
        while candidate.casefold() in self._taken:
            n += 1
            candidate = f"{header} ({qualifier} {n})"
        self._taken.add(candidate.casefold())
        self.keys[(source, key)] = candidate

    def headers(self) -> list[str]:
        return list(self.keys.values())

    def row(self, values: Mapping[tuple[str, str], Any]) -> list[Any]:
        return [values.get(k) for k in self.keys]


def _lead_columns(columns: _Columns, groups: Iterable[str | None]) -> bool:
    columns.add("", "row_id", "Row ID", "run")
    with_group = any(g is not None for g in groups)
    if with_group:
        columns.add("", "group", "Experiment", "run")
    return with_group


def results_sheet(records: Sequence[Record]) -> Sheet:
    """One row per record: Row ID, Experiment, the input columns as they are, outputs, then metrics."""
    columns = _Columns()
    _lead_columns(columns, (r.group for r in records))
    flat_metrics = [flatten(r.metrics) for r in records]
    for r in records:
        for key in r.inputs:
            columns.add("input", key, key, "input")
    for r in records:
        for key in r.outputs:
            columns.add("output", key, readable(key), "output")
    for metrics in flat_metrics:
        for key in metrics:
            columns.add("metric", key, readable(key), "metric")
    sheet = Sheet("Results", columns.headers() or ["Row ID"])
    for r, metrics in zip(records, flat_metrics, strict=True):
        values: dict[tuple[str, str], Any] = {("", "row_id"): r.row_id, ("", "group"): r.group}
        values.update({("input", k): v for k, v in r.inputs.items()})
        values.update({("output", k): v for k, v in r.outputs.items()})
        values.update({("metric", k): v for k, v in metrics.items()})
        sheet.rows.append(columns.row(values))
    return sheet


def failures_sheet(failures: Sequence[Failure]) -> Sheet:
    """One row per failed row: Row ID, Experiment, the inputs, then where and why it failed."""
    columns = _Columns()
    _lead_columns(columns, (f.group for f in failures))
    for f in failures:
        for key in f.inputs:
            columns.add("input", key, key, "input")
    for key, header in (("stage", "Stage"), ("error", "Error"), ("attempts", "Attempts"), ("output", "Output")):
        columns.add("", key, header, "failure")
    sheet = Sheet("Failures", columns.headers())
    for f in failures:
        values: dict[tuple[str, str], Any] = {
            ("", "row_id"): f.row_id,
            ("", "group"): f.group,
            ("", "stage"): f.stage,
            ("", "error"): f.error,
            ("", "attempts"): len(f.attempts),
            ("", "output"): to_text(f.output) if f.output else None,
        }
        values.update({("input", k): v for k, v in f.inputs.items()})
        sheet.rows.append(columns.row(values))
    return sheet


def _metric_rows(prefix: list[Any], plugin: str, value: Any) -> list[list[Any]]:
    if isinstance(value, Mapping):
        items = flatten(value)
        if not items:
            return []
        return [[*prefix, plugin, metric, item] for metric, item in items.items()]
    return [[*prefix, plugin, "", value]]


def aggregates_sheet(aggregates: Mapping[str, Any]) -> Sheet:
    """Every aggregate as one row: experiment, baseline or not, plugin, dotted metric name, value.

    Each experiment first gets its row counts (plugin ``run``) and early-stop facts (plugin
    ``early_stop``). Aggregates that are not an experiment orchestrator's are listed by their top-level key.
    """
    experiments = aggregates.get("experiments")
    if not isinstance(experiments, Mapping):
        sheet = Sheet("Aggregates", ["Plugin", "Metric", "Value"])
        for key, value in aggregates.items():
            sheet.rows.extend(_metric_rows([], key, value))
        return sheet
    sheet = Sheet("Aggregates", ["Experiment", "Baseline", "Plugin", "Metric", "Value"])
    for name, exp in experiments.items():
        prefix = [name, bool(exp.get("baseline"))]
        counts = {k: exp[k] for k in ("rows", "succeeded", "failed", "not_run") if k in exp}
        sheet.rows.extend(_metric_rows(prefix, "run", counts))
        if exp.get("early_stop"):
            sheet.rows.extend(_metric_rows(prefix, "early_stop", exp["early_stop"]))
        for plugin, value in (exp.get("aggregates") or {}).items():
            sheet.rows.extend(_metric_rows(prefix, plugin, value))
    return sheet


def comparisons_sheet(aggregates: Mapping[str, Any]) -> Sheet:
    """Every baseline comparison as one row: variant, baseline, comparison plugin, dotted metric name, value."""
    sheet = Sheet("Comparisons", ["Variant", "Baseline", "Plugin", "Metric", "Value"])
    comparisons = aggregates.get("comparisons")
    if not isinstance(comparisons, Mapping):
        return sheet
    baseline = aggregates.get("baseline")
    for variant, by_plugin in comparisons.items():
        for plugin, value in (by_plugin or {}).items():
            sheet.rows.extend(_metric_rows([variant, baseline], plugin, value))
    return sheet


_MANIFEST_SKIP = {"security_level", "artifacts"}


def manifest_sheet(metadata: RunMetadata, settings: Mapping[str, Any]) -> Sheet:
    """The run's facts, this workbook's settings, then every plugin the run used with its version.

    Args:
        metadata: the run's metadata.
        settings: facts about how the workbook was written (sanitisation, writer version, time), in order.

    """
    sheet = Sheet("Manifest", ["Field", "Value", "Distribution", "Version"])
    facts: list[tuple[str, Any]] = [
        ("Run ID", metadata.run_id),
        ("Name", metadata.name),
        ("Orchestrator", metadata.orchestrator),
        ("Status", metadata.status),
        ("Started at", metadata.started_at),
        ("Finished at", metadata.finished_at),
        ("Duration (s)", metadata.duration_s),
        ("Input rows", metadata.rows),
        ("Records", metadata.succeeded),
        ("Failures", metadata.failed),
    ]
    if metadata.security_level is not None:
        facts.append(("Security level", metadata.security_level))
    facts.extend(settings.items())
    for key, value in metadata.facts().items():
        if key in _MANIFEST_SKIP or value in (None, {}, []):
            continue
        if isinstance(value, Mapping):
            facts.extend((readable(f"{key}.{k}"), v) for k, v in flatten(value).items())
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            facts.append((readable(key), ", ".join(value)))
        else:
            facts.append((readable(key), value))
    sheet.rows.extend([label, value, None, None] for label, value in facts)
    for plugin in metadata.plugins:
        sheet.rows.append(
            [
                f"Plugin ({plugin.get('domain', '?')})",
                plugin.get("name"),
                plugin.get("distribution"),
                plugin.get("version"),
            ]
        )
    return sheet
