"""The ``opentelemetry`` observer: each row's path through a run as spans, exported over OTLP/HTTP.

The run is one span (``elspeth.run``); each row a child of it (``elspeth.row``, or the root of a
trace of its own, linked to the run, with ``trace_per_row``); under a row, its stages
(``processors``, ``work``, ``validation:NAME``, ``commit``) and every LLM attempt with its status,
error and the wait before the next; each sink's write under the run.

The hooks report a stage or an attempt when it ends, with its start, so the observer keeps a row's
spans until the row's last stage (``row``) arrives and then emits them with their real times. What it
holds is bounded by the rows in flight. The SDK's batch processor exports from a thread of its own,
so a hook never waits on the collector; ``close()`` flushes what is left.

No prompt or response text reaches a span unless ``include_text`` is on (then cut to ``text_limit``).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from elspeth import Failure, LLMRequest, LLMResponse, PluginContext, Record, RunResult, hookimpl, is_loopback

__all__ = ["OpenTelemetryObserver"]

log = logging.getLogger("elspeth.observe.opentelemetry")

_NS = 1_000_000_000


@dataclass
class _Span:
    """A finished span waiting for its row: name, times in ns since the epoch, attributes, error."""

    name: str
    start: int
    end: int
    attributes: dict[str, Any]
    error: str | None = None


@dataclass
class _Row:
    spans: list[_Span] = field(default_factory=list)
    failure: Failure | None = None
    finished: bool = False


class OpenTelemetryObserver:
    """Traces each row's path (processors, LLM attempts, validators, commit, sinks) through the OTLP exporter."""

    name = "opentelemetry"

    class Options(BaseModel):
        """Options of ``opentelemetry``."""

        model_config = ConfigDict(extra="forbid")

        allow_non_loopback: bool = Field(
            False, description="allow an endpoint other than a loopback address (the traces then leave this machine)"
        )
        endpoint: str = Field(
            "http://127.0.0.1:4318/v1/traces", description="the collector's OTLP/HTTP traces URL (protobuf)"
        )
        headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers sent with every export")
        service_name: str = Field("elspeth", min_length=1, description="the traces' service.name")
        trace_per_row: bool = Field(
            False, description="each row its own trace, linked to the run's span (for runs of many rows)"
        )
        sample_rows: float = Field(
            1.0, ge=0, le=1, description="the share of rows traced, chosen by row id (the same rows every run)"
        )
        include_text: bool = Field(
            False, description="put each attempt's prompt and response on its span (off: no text in any span)"
        )
        text_limit: int = Field(200, ge=1, description="characters of each text kept with include_text")
        timeout_s: float = Field(10.0, gt=0, description="how long one export may take")

        @field_validator("endpoint")
        @classmethod
        def _loopback(cls, endpoint: str, info: ValidationInfo) -> str:
            if not endpoint.startswith(("http://", "https://")):
                raise ValueError(f"{endpoint!r} is not an http(s) URL")
            if not info.data.get("allow_non_loopback") and not is_loopback(endpoint):
                raise ValueError(
                    f"{endpoint!r} is not a loopback address; set allow_non_loopback: true to send traces there"
                )
            return endpoint

    def __init__(self, options: Options) -> None:
        self.options = options
        self._provider: Any = None
        self._tracer: Any = None
        self._run: Any = None
        self._rows: dict[str, _Row] = {}

    def open(self, ctx: PluginContext) -> None:
        """Create the observer's own tracer provider (never the global one) exporting to ``endpoint``."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        opts = self.options
        resource = Resource.create({"service.name": opts.service_name, "elspeth.run_id": ctx.run_id})
        self._provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=opts.endpoint, headers=dict(opts.headers), timeout=opts.timeout_s)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("elspeth.observe.opentelemetry")
        log.info("tracing run %s to %s", ctx.run_id, opts.endpoint)

    def close(self) -> None:
        """Emit any row still held, end the run's span if the run never finished, then flush and shut down."""
        if self._provider is None:
            return
        for row_id in list(self._rows):
            self._emit_row(row_id, None)
        if self._run is not None:
            self._run.end()
            self._run = None
        self._provider.shutdown()  # flushes the batch processor
        self._provider = None

    @hookimpl
    def run_started(self, run_id: str, name: str, orchestrator: str) -> None:
        """Open the run's span."""
        self._run = self._tracer.start_span(
            "elspeth.run",
            attributes={"elspeth.run_id": run_id, "elspeth.run_name": name, "elspeth.orchestrator": orchestrator},
        )

    @hookimpl
    def run_finished(self, result: RunResult) -> None:
        """End the run's span with its outcome and row counts."""
        if self._run is None:
            return
        meta = result.metadata
        self._run.set_attributes(
            {
                "elspeth.status": meta.status,
                "elspeth.rows": meta.rows,
                "elspeth.succeeded": meta.succeeded,
                "elspeth.failed": meta.failed,
            }
        )
        if meta.status == "failed":
            self._set_error(self._run, meta.outcome.reason or "failed")
        self._run.end()
        self._run = None

    @hookimpl
    def row_finished(self, record: Record | None, failure: Failure | None) -> None:
        """Keep the row's outcome for its span (its last stage, ``row``, follows)."""
        row_id = failure.row_id if failure is not None else record.row_id if record is not None else None
        if row_id is not None and self._traced(row_id):
            self._rows.setdefault(row_id, _Row()).failure = failure

    @hookimpl
    def stage_finished(
        self, row_id: str | None, stage: str, started: float, duration_s: float, failed: bool, error: str | None
    ) -> None:
        """Hold a row's stage until the row ends; a sink's write is a span of the run at once."""
        start = int(started * _NS)
        span = _Span(stage, start, start + int(duration_s * _NS), {"elspeth.stage": stage}, error if failed else None)
        if row_id is None:
            self._emit(span, None)
        elif self._traced(row_id):
            if stage == "row":
                self._emit_row(row_id, span)
            else:
                self._rows.setdefault(row_id, _Row()).spans.append(span)

    @hookimpl
    def llm_attempt_finished(
        self,
        row_id: str | None,
        llm: str,
        attempt: int,
        outcome: str,
        status: int | None,
        error_type: str | None,
        latency_s: float,
        wait_s: float,
        tokens: Mapping[str, int],
        cost: float | None,
        request: LLMRequest,
        response: LLMResponse | None,
    ) -> None:
        """Hold the attempt's span (status, error, tokens, cost, the wait before the next) for its row."""
        if row_id is not None and not self._traced(row_id):
            return
        end = time.time_ns()
        attributes: dict[str, Any] = {
            "elspeth.llm": llm,
            "elspeth.attempt": attempt,
            "elspeth.outcome": outcome,
            "elspeth.retry_wait_s": wait_s,
            "gen_ai.usage.input_tokens": int(tokens.get("prompt", 0)),
            "gen_ai.usage.output_tokens": int(tokens.get("completion", 0)),
        }
        if status is not None:
            attributes["http.response.status_code"] = status
        if error_type is not None:
            attributes["error.type"] = error_type
        if cost is not None:
            attributes["elspeth.cost"] = float(cost)
        if self.options.include_text:
            limit = self.options.text_limit
            attributes["elspeth.prompt"] = request.user[:limit]
            if response is not None:
                attributes["elspeth.response"] = response.content[:limit]
        error = error_type if outcome != "ok" else None
        span = _Span("llm.attempt", end - int(latency_s * _NS), end, attributes, error)
        if row_id is None:
            self._emit(span, None)
        else:
            self._rows.setdefault(row_id, _Row()).spans.append(span)

    def _traced(self, row_id: str) -> bool:
        rate = self.options.sample_rows
        return rate >= 1 or (zlib.crc32(row_id.encode()) / 0xFFFFFFFF) < rate

    def _emit_row(self, row_id: str, whole: _Span | None) -> None:
        """The row's span (``whole`` gives its times; else its stages' extent), then its stages under it."""
        held = self._rows.pop(row_id, None) or _Row()
        if whole is None:
            if not held.spans:
                return
            whole = _Span("row", min(s.start for s in held.spans), max(s.end for s in held.spans), {})
        attributes: dict[str, Any] = {"elspeth.row_id": row_id, "elspeth.row_outcome": "succeeded"}
        failure = held.failure
        if failure is not None:
            attributes.update({"elspeth.row_outcome": "failed", "elspeth.failed_stage": failure.stage})
        row = _Span("elspeth.row", whole.start, whole.end, attributes, failure.stage if failure else None)
        parent = self._emit(row, None, keep_open=True)
        for span in held.spans:
            self._emit(span, parent)
        parent.end(end_time=whole.end)

    def _emit(self, span: _Span, parent: Any, *, keep_open: bool = False) -> Any:
        """Start and end ``span`` with its own times under ``parent`` (or the run, or a row trace's root)."""
        from opentelemetry import trace

        links: list[Any] = []
        if parent is not None:
            context = trace.set_span_in_context(parent)
        elif self._run is not None and not (self.options.trace_per_row and span.name == "elspeth.row"):
            context = trace.set_span_in_context(self._run)
        else:  # a trace of its own; linked to the run, when there is one
            from opentelemetry.context import Context

            context = Context()
            if self._run is not None:
                links.append(trace.Link(self._run.get_span_context()))
        otel = self._tracer.start_span(
            span.name, context=context, start_time=span.start, attributes=span.attributes, links=links
        )
        if span.error is not None:
            self._set_error(otel, span.error)
        if not keep_open:
            otel.end(end_time=span.end)
        return otel

    @staticmethod
    def _set_error(otel: Any, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        otel.set_status(Status(StatusCode.ERROR, description))
