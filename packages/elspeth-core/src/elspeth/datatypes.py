"""The data that flows through a run: rows in, LLM requests and responses, records and failures out."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elspeth.outcome import RunOutcome, Status
from elspeth.totals import RunTotals

__all__ = [
    "Artifact",
    "Failure",
    "LLMRequest",
    "LLMResponse",
    "Record",
    "Row",
    "RunMetadata",
    "RunResult",
    "Table",
    "Usage",
    "flatten",
    "reported_artifacts",
]


@dataclass(frozen=True, slots=True)
class Row:
    """One input row.

    Attributes:
        id: a stable identifier (from a configured id column, else the row's position).
        data: column name to value.
        index: 0-based position in the datasource.

    """

    id: str
    data: Mapping[str, Any]
    index: int


@dataclass
class Table:
    """What a datasource hands to the run: its columns (known before any row is read) and the rows.

    Attributes:
        columns: column names, in order; templates are checked against these before any LLM call.
        rows: the rows, read lazily; a datasource may give a sync or async iterable. One that knows how
            many rows it has (the ``csv`` datasource counts them while checking the file) may also give
            the iterable a ``__len__``: an orchestrator that streams the rows then reports the count
            (``ctx.expect_rows``), so ``elspeth runs list`` shows how many are pending during the run.
        source: a human-readable name of where the rows come from (a path or URL).

    """

    columns: list[str]
    rows: Iterable[Row] | AsyncIterable[Row]
    source: str = ""


@dataclass(slots=True)
class Usage:
    """Token usage of one LLM call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class LLMRequest:
    """A chat request as the middleware chain and the client see it.

    Attributes:
        system: the rendered system prompt.
        user: the rendered user prompt.
        params: client parameters for this call (temperature, max_tokens, ...), merged over the client's options.
        metadata: run id, row id, criterion, attempt and anything middleware adds; never sent to the LLM.

    """

    system: str
    user: str
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LLMResponse:
    """An LLM's answer.

    Attributes:
        content: the text of the reply.
        usage: token counts.
        latency_s: wall time of the call in seconds, as measured by the pipeline.
        model: the model that answered, if the client knows it.
        metrics: numbers a client or middleware attaches (the mock client puts its ``score`` here).
        raw: the provider's own response object, for plugins that need more.
        cached: True when the answer came from a cache rather than a live call.
        attempts: how many attempts the call took (set by the pipeline's retry layer).

    """

    content: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: Any = None
    cached: bool = False
    attempts: int = 1


@dataclass(slots=True)
class Record:
    """One finished row of a run.

    Attributes:
        row_id: the input row's id.
        inputs: the input row's values.
        outputs: what the run produced for the row (LLM replies, mapped columns).
        metrics: numbers about the row (scores, latency, tokens, cost); may nest one level of dicts.
        group: the experiment (or other grouping) the record belongs to, if any.

    """

    row_id: str
    inputs: Mapping[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    group: str | None = None


@dataclass(slots=True)
class Failure:
    """A row that could not be finished; it is reported, never dropped.

    Attributes:
        row_id: the input row's id.
        inputs: the input row's values.
        stage: where it failed (``render``, ``llm``, ``validation``, ``plugin:NAME``, ...).
        error: what went wrong, in one line.
        attempts: one entry per attempt, each with at least ``attempt`` and ``error``.
        group: the experiment the row belongs to, if any.
        output: whatever output was obtained before failing (a response that failed validation).
        metrics: what the row cost before it failed (``latency_s``, ``prompt_tokens``,
            ``completion_tokens``, ``cost``), so paid calls on failed rows are counted too.

    """

    row_id: str
    inputs: Mapping[str, Any]
    stage: str
    error: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    group: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a sink wrote, returned from ``Sink.write`` so the run lists it.

    Attributes:
        path: the local file; for an upload, the object's name inside its store (not a local file).
        media_type: e.g. ``text/csv``.
        sink: the name of the sink that wrote it.
        url: where an uploaded artifact is (without credentials); the run lists it by this URL.
        security_level: the level of the data in it; the engine sets the run's when a sink leaves it None.

    """

    path: Path
    media_type: str
    sink: str
    url: str | None = None
    security_level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """How the run lists it (``summary.json``'s ``artifacts``): an upload by its URL."""
        return {
            "path": str(self.url or self.path),
            "media_type": self.media_type,
            "sink": self.sink,
            "security_level": self.security_level,
        }


@dataclass
class RunMetadata:
    """Facts about a run as a whole.

    Attributes:
        run_id: unique id of the run.
        name: the settings' ``name``.
        orchestrator: the orchestrator plugin's name.
        started_at: ISO 8601 UTC start time.
        finished_at: ISO 8601 UTC end time.
        duration_s: wall time in seconds.
        rows: input rows seen.
        succeeded: records produced.
        failed: failures recorded.
        outcome: how the run ended (status and reason), decided by the engine once the orchestrator
            returns; orchestrators leave it alone. :attr:`status` reads it.
        plugins: every plugin the run used, with its domain, distribution and version.
        early_stop: what an orchestrator declares stopped early, by part (an experiment's name: the
            early-stop plugin and its detail); None for an orchestrator with no early stops. The
            engine reads it to decide the outcome.
        extra: orchestrator- and plugin-specific facts, each plugin under its own keys; core reads none.
        security_level: the level of the run's data (the engine's).
        summaries: each part's ``summary()`` (middleware, controls, processors, utilities, datasource),
            by domain and then name (``name[i]`` for a plugin listed twice); the engine's.
        warnings: observers that raised, each in words; the row and the run went on.
        cost: the cost tracker's own summary, if the run has a cost tracker with one.
        resumed_rows: rows taken over from the earlier attempts of a resumed run (None: not resumed).
        attempt_duration_s: a resumed run's wall time of this attempt (``duration_s`` counts every attempt).
        totals: what the run spent over every attempt, from its ledger (the engine's).
        artifacts: the files the sinks wrote, in the order they wrote them, so a sink that writes
            ``after`` others sees theirs (None until the sinks write); an orchestrator may list a file it
            wrote itself (the validation's rejects).

    """

    run_id: str
    name: str
    orchestrator: str
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    outcome: RunOutcome = field(default_factory=RunOutcome)
    plugins: list[dict[str, str]] = field(default_factory=list)
    early_stop: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    security_level: str | None = None
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cost: dict[str, Any] | None = None
    resumed_rows: int | None = None
    attempt_duration_s: float | None = None
    totals: RunTotals | None = None
    artifacts: list[Artifact] | None = None

    @property
    def status(self) -> Status:
        """``completed``, ``stopped`` (early stop or budget), ``interrupted`` (Ctrl-C) or ``failed``: the outcome's."""
        return self.outcome.status

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (``summary.json``, the run store, reports): typed fields first, then ``extra``."""
        typed: dict[str, Any] = {}
        if self.early_stop is not None:
            typed["early_stop"] = self.early_stop
        if self.outcome.stop_reason is not None:
            typed["stop_reason"] = self.outcome.stop_reason
        if self.outcome.reason:
            typed["status_reason"] = self.outcome.reason
        return {
            "run_id": self.run_id,
            "name": self.name,
            "orchestrator": self.orchestrator,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "rows": self.rows,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "status": self.status,
            "plugins": list(self.plugins),
            **typed,
            **self.facts(),
        }

    def facts(self) -> dict[str, Any]:
        """``extra`` and the engine's facts, JSON-ready, as :meth:`to_dict` lists them after the fixed fields."""
        out = dict(self.extra)
        if self.security_level is not None:
            out["security_level"] = self.security_level
        out.update((domain, dict(by_name)) for domain, by_name in self.summaries.items())
        if self.warnings:
            out["warnings"] = list(self.warnings)
        optional = {"cost": self.cost, "resumed_rows": self.resumed_rows, "attempt_duration_s": self.attempt_duration_s}
        out.update((key, value) for key, value in optional.items() if value is not None)
        if self.totals is not None:
            out["totals"] = self.totals.to_dict()
        if self.artifacts is not None:
            out["artifacts"] = [artifact.to_dict() for artifact in self.artifacts]
        return out


_constructed = RunMetadata.__init__


def _init_with_status(self: RunMetadata, *args: Any, status: Status | None = None, **kwargs: Any) -> None:
    """``RunMetadata(status=...)``, deprecated: the engine decides the outcome; ``outcome=`` says one."""
    _constructed(self, *args, **kwargs)
    if status is not None:
        warnings.warn(
            "RunMetadata(status=...) is deprecated and will be removed in elspeth-core 0.2; the engine decides "
            "a run's status (leave it out), or pass outcome=elspeth.RunOutcome(status)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.outcome = RunOutcome(status)


RunMetadata.__init__ = _init_with_status  # type: ignore[method-assign]


@dataclass
class RunResult:
    """Everything a run produced; sinks receive it.

    ``records`` and ``failures`` are sequences: a list, or a disk-backed :class:`~elspeth.Spool` when
    the orchestrator streams (batch, validation). A sink should iterate them (as often as it needs)
    rather than copy them into a list, so that its memory stays flat however many rows the run had.

    Attributes:
        records: finished rows, in input order (grouped by experiment in suites).
        failures: rows that failed, with reasons.
        aggregates: orchestrator-defined summaries (for experiments: per-experiment aggregates and comparisons).
        metadata: run-level facts.

    """

    records: Sequence[Record]
    failures: Sequence[Failure]
    aggregates: dict[str, Any]
    metadata: RunMetadata


def reported_artifacts(result: RunResult) -> tuple[list[Path], list[str]]:
    """What the run's sinks reported writing so far, from ``metadata.artifacts``.

    The engine adds each sink's artifacts there as the sink finishes, so a sink that writes after the
    others (``collects_run_artifacts``) sees theirs.

    Returns:
        the local files (resolved, each once, in the order reported), and the remote ones by URL
        (an uploaded blob).
    """
    local: dict[Path, None] = {}
    remote: list[str] = []
    for reported in result.metadata.artifacts or []:
        raw = str(reported.url or reported.path)
        if "://" in raw:
            remote.append(raw)
        else:
            local.setdefault(Path(raw).resolve(), None)
    return list(local), remote


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys: ``{"a": {"b": 1}}`` becomes ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(flatten(item, f"{name}."))
        else:
            out[name] = item
    return out
