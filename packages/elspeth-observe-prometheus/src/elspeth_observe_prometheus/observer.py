"""The ``prometheus`` observer: every figure of a run as Prometheus metrics, served while it runs.

The metrics live in a registry of the observer's own (never prometheus_client's global one), served
by prometheus_client's own HTTP server in a thread of its own, so a scrape never waits for the run's
event loop and the hooks only update counters (thread-safe in prometheus_client).

No prompt or response text reaches a metric unless ``include_text`` is on: then the last answered
exchange is an info metric, cut to ``text_limit`` characters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from elspeth import Failure, LLMRequest, LLMResponse, PluginContext, Record, RunResult, hookimpl, is_loopback

__all__ = ["PrometheusObserver"]

log = logging.getLogger("elspeth.observe.prometheus")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_NAMED_GAUGES = ("in_flight", "rate_limiter_rate", "consumer_lag")


class _Metrics:
    """The observer's metrics, in a registry of their own."""

    def __init__(self, prefix: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = registry = CollectorRegistry(auto_describe=True)
        p = prefix
        self.run = Info(f"{p}_run", "the run being observed", registry=registry)
        self.finished = Gauge(f"{p}_run_finished", "1 once the run has finished", registry=registry)
        self.rows = Counter(f"{p}_rows", "rows (messages) finished, by outcome", ["outcome"], registry=registry)
        self.failures = Counter(
            f"{p}_row_failures", "failed rows, by the stage they failed at", ["stage"], registry=registry
        )
        self.stage = Histogram(
            f"{p}_stage_duration_seconds", "time per stage", ["stage"], buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.stage_failures = Counter(f"{p}_stage_failures", "stages that raised", ["stage"], registry=registry)
        self.attempts = Counter(
            f"{p}_llm_attempts",
            "LLM attempts, by outcome and HTTP status",
            ["llm", "outcome", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{p}_llm_latency_seconds",
            "time per LLM attempt",
            ["llm", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(f"{p}_llm_retries", "LLM attempts followed by another", ["llm"], registry=registry)
        self.wait = Counter(f"{p}_llm_retry_wait_seconds", "backoff waited before retries", ["llm"], registry=registry)
        self.tokens = Counter(f"{p}_llm_tokens", "tokens of answered attempts", ["llm", "kind"], registry=registry)
        self.cost = Counter(f"{p}_llm_cost", "what the cost tracker charged", ["llm"], registry=registry)
        self.gauges = {name: Gauge(f"{p}_{name}", f"the run's {name}", registry=registry) for name in _NAMED_GAUGES}
        self.other = Gauge(f"{p}_gauge", "an orchestrator's own gauges, by name", ["name"], registry=registry)
        self.exchange = Info(
            f"{p}_last_exchange", "the last answered prompt and response (include_text)", registry=registry
        )


class PrometheusObserver:
    """Serves the run's live metrics on ``/metrics`` (rows, failures by stage, LLM latency, tokens, cost, retries)."""

    name = "prometheus"

    class Options(BaseModel):
        """Options of ``prometheus``."""

        model_config = ConfigDict(extra="forbid")

        allow_non_loopback: bool = Field(
            False, description="allow a host other than a loopback address (the metrics then leave this machine)"
        )
        host: str = Field("127.0.0.1", description="address to listen on; a loopback one unless allow_non_loopback")
        port: int = Field(9464, ge=0, le=65535, description="port to listen on (0: any free port, logged)")
        prefix: str = Field("elspeth", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="prefix of every metric name")
        linger_s: float = Field(
            0.0, ge=0, le=3600, description="keep serving this long after the run, so a last scrape sees its end"
        )
        include_text: bool = Field(
            False, description="export the last prompt and response as an info metric (off: no text in any metric)"
        )
        text_limit: int = Field(200, ge=1, description="characters of each text kept with include_text")

        @field_validator("host")
        @classmethod
        def _loopback(cls, host: str, info: ValidationInfo) -> str:
            if not info.data.get("allow_non_loopback") and not is_loopback(host):
                raise ValueError(f"{host!r} is not a loopback address; set allow_non_loopback: true to serve it there")
            return host

    def __init__(self, options: Options) -> None:
        self.options = options
        self.metrics = _Metrics(options.prefix)
        self.port: int | None = None
        self._server: Any = None

    def open(self, ctx: PluginContext) -> None:
        """Start serving ``/metrics`` (a port already taken stops the run before any row, naming this observer)."""
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(self.options.port, self.options.host, self.metrics.registry)
        self.port = int(self._server.server_port)
        log.warning("prometheus metrics of run %s at http://%s:%d/metrics", ctx.run_id, self.options.host, self.port)

    def close(self) -> None:
        """Stop serving, after ``linger_s`` (in a thread of its own: the run ends at once, the process waits)."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.options.linger_s <= 0:
            server.shutdown()
            server.server_close()
            return
        timer = threading.Timer(self.options.linger_s, lambda: (server.shutdown(), server.server_close()))
        timer.start()

    @hookimpl
    def run_started(self, run_id: str, name: str, orchestrator: str) -> None:
        """Name the run in ``<prefix>_run_info``."""
        self.metrics.run.info({"run_id": run_id, "name": name, "orchestrator": orchestrator})
        self.metrics.finished.set(0)

    @hookimpl
    def row_finished(self, record: Record | None, failure: Failure | None) -> None:
        """Count the row; a failure also by its stage."""
        self.metrics.rows.labels("failed" if failure is not None else "succeeded").inc()
        if failure is not None:
            self.metrics.failures.labels(failure.stage).inc()

    @hookimpl
    def run_finished(self, result: RunResult) -> None:
        """Mark the run finished."""
        self.metrics.finished.set(1)

    @hookimpl
    def llm_attempt_finished(
        self,
        llm: str,
        outcome: str,
        status: int | None,
        latency_s: float,
        wait_s: float,
        tokens: Mapping[str, int],
        cost: float | None,
        request: LLMRequest,
        response: LLMResponse | None,
    ) -> None:
        """Count the attempt, its latency, its tokens and cost, and a retry's wait."""
        m = self.metrics
        m.attempts.labels(
            llm, outcome, str(status) if status is not None else ("200" if outcome == "ok" else "none")
        ).inc()
        m.latency.labels(llm, outcome).observe(latency_s)
        if outcome == "retry":
            m.retries.labels(llm).inc()
            m.wait.labels(llm).inc(wait_s)
        for kind, count in tokens.items():
            if count:
                m.tokens.labels(llm, kind).inc(count)
        if cost:
            m.cost.labels(llm).inc(cost)
        if self.options.include_text and response is not None:
            limit = self.options.text_limit
            m.exchange.info({"llm": llm, "prompt": request.user[:limit], "response": response.content[:limit]})

    @hookimpl
    def stage_finished(self, stage: str, duration_s: float, failed: bool) -> None:
        """Time the stage; count it if it raised."""
        self.metrics.stage.labels(stage).observe(duration_s)
        if failed:
            self.metrics.stage_failures.labels(stage).inc()

    @hookimpl
    def gauge_reported(self, name: str, value: float) -> None:
        """Set the gauge: a known one under its own name, an orchestrator's own as ``<prefix>_gauge{name}``."""
        gauge = self.metrics.gauges.get(name)
        if gauge is not None:
            gauge.set(value)
        else:
            self.metrics.other.labels(name).set(value)
