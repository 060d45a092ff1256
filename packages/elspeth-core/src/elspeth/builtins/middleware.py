"""Builtin LLM middleware: ``audit_logger``, ``prompt_shield`` and ``health_monitor``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from datetime import UTC, datetime
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth.config.settings import SECRET_KEYS
from elspeth.datatypes import LLMRequest, LLMResponse
from elspeth.llm_errors import LLMCallFailed, LLMContentRefused
from elspeth.orchestration.plugin_context import PluginContext
from elspeth.outputs import DeclaredPath, output_target

_REDACTED = "[redacted]"
_AUDITED_METADATA = ("run_id", "row_id", "experiment", "criterion", "llm", "endpoint", "key_id")


def _scrub(value: Any) -> Any:
    """Copy of ``value`` with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: (_REDACTED if isinstance(k, str) and SECRET_KEYS.match(k) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


class AuditLogger:
    """A JSON Lines audit trail of every LLM request and response (secrets never written)."""

    name = "audit_logger"

    class Options(BaseModel):
        """Options of ``audit_logger``."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("audit.jsonl", description="the JSON Lines file, relative to the output folder")
        include_prompts: bool = Field(False, description="write the rendered system and user prompts")
        include_responses: bool = Field(False, description="write the response text")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._handle: IO[str] | None = None
        self._started: dict[int, float] = {}
        self._answered: set[int] = set()  # calls whose response line is written and whose outcome is pending

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The audit trail, which must not be a file the run reads."""
        return [DeclaredPath("path", output_target(ctx, self.options.path))]

    def open(self, ctx: PluginContext) -> None:
        """Open the trail (appending: a resumed run continues the same file)."""
        self._handle = ctx.output_path(self.options.path).open("a", encoding="utf-8", buffering=1)

    def close(self) -> None:
        """Flush and close the trail."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _write(self, event: str, request: LLMRequest, **fields: Any) -> None:
        if self._handle is None:
            return
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            **{k: request.metadata.get(k) for k in _AUDITED_METADATA},
            **fields,
        }
        self._handle.write(json.dumps(_scrub(entry), default=str, ensure_ascii=False) + "\n")

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Record the request."""
        self._started[id(request)] = time.perf_counter()
        extra: dict[str, Any] = {"params": request.params}
        if self.options.include_prompts:
            extra |= {"system": request.system, "user": request.user}
        self._write("request", request, **extra)
        return request

    def _answer(self, request: LLMRequest, response: LLMResponse) -> dict[str, Any]:
        started = self._started.pop(id(request), None)
        extra: dict[str, Any] = {
            "latency_s": round(response.latency_s, 6),
            "elapsed_s": round(time.perf_counter() - started, 6) if started is not None else None,
            "attempts": response.attempts,
            "model": response.model,
            "cached": response.cached,
            "usage": {"prompt": response.usage.prompt_tokens, "completion": response.usage.completion_tokens},
            "cost": response.metrics.get("cost"),
        }
        return extra

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        """Record the response with its timing, usage and cost."""
        extra = self._answer(request, response)
        if self.options.include_responses:
            extra["content"] = response.content
        self._answered.add(id(request))
        self._write("response", request, **extra)
        return response

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """The call ended well; its response line is already written."""
        self._answered.discard(id(request))

    async def on_error(self, request: LLMRequest, error: LLMCallFailed) -> None:
        """Record a call that failed for good, with its attempts."""
        self._started.pop(id(request), None)
        self._write("error", request, stage="llm", error=str(error), attempts=error.attempts)

    async def on_refused(self, request: LLMRequest, error: Exception, response: LLMResponse | None) -> None:
        """Record a call a middleware refused: before sending (``stage: request``) or after a paid answer.

        A refused answer's usage and cost are written here unless this trail's response line (written
        before a middleware further out refused it) already holds them, so summing ``cost`` over the
        trail never counts a call twice. The refused text itself is never written.
        """
        extra: dict[str, Any] = {}
        if response is not None and id(request) not in self._answered:
            extra = self._answer(request, response)
        self._answered.discard(id(request))
        self._started.pop(id(request), None)
        stage = "request" if response is None else "response"
        self._write("error", request, stage=stage, error_type=type(error).__name__, error=str(error), **extra)


class PromptShield:
    """Refuses, masks or logs denied terms and patterns in prompts (and optionally responses)."""

    name = "prompt_shield"

    class Options(BaseModel):
        """Options of ``prompt_shield``."""

        model_config = ConfigDict(extra="forbid")

        denied_terms: list[str] = Field(
            default_factory=list,
            description="words or phrases, matched case-insensitively as whole words ('ass' does not match 'class')",
        )
        patterns: list[str] = Field(default_factory=list, description="regular expressions, matched case-insensitively")
        check_system: bool = Field(True, description="screen the system prompt")
        check_user: bool = Field(True, description="screen the user prompt")
        check_response: bool = Field(False, description="screen the response too")
        on_violation: Literal["abort", "mask", "log"] = Field("abort", description="what to do on a match")
        mask: str = Field("[REDACTED]", description="replacement text when masking")

        @field_validator("patterns")
        @classmethod
        def _compiles(cls, value: list[str]) -> list[str]:
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
            return value

    def __init__(self, options: Options) -> None:
        self.options = options
        # a term must not touch a word character on either side; patterns are the user's own regex
        terms = [rf"(?<!\w){re.escape(t)}(?!\w)" for t in options.denied_terms if t]
        parts = terms + list(options.patterns)
        self._regex = re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE) if parts else None
        self._log = logging.getLogger("elspeth.prompt_shield")
        self.violations = 0

    def _screen(self, text: str, where: str, request: LLMRequest) -> str:
        if self._regex is None:
            return text
        match = self._regex.search(text)
        if match is None:
            return text
        self.violations += 1
        message = (
            f"prompt_shield: denied content {match.group(0)!r} in the {where} (row {request.metadata.get('row_id')})"
        )
        if self.options.on_violation == "abort":
            raise LLMContentRefused(message)
        self._log.warning(message)
        if self.options.on_violation == "mask":
            return self._regex.sub(self.options.mask, text)
        return text

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Screen the prompts."""
        if self.options.check_system:
            request.system = self._screen(request.system, "system prompt", request)
        if self.options.check_user:
            request.user = self._screen(request.user, "user prompt", request)
        return request

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        """Screen the response, if asked."""
        if self.options.check_response:
            response.content = self._screen(response.content, "response", request)
        return response

    def summary(self) -> dict[str, Any]:
        """How many violations were found."""
        return {"violations": self.violations}


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = q * (len(sorted_values) - 1)
    low = int(index)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (index - low)


class HealthMonitor:
    """Counts requests and failures, tracks latency percentiles, and logs a periodic heartbeat.

    Every call counts once: a success when its answer passed every middleware, a failure when the
    client failed for good or a middleware refused the prompt or the answer (``refused`` counts
    those). The heartbeat is a timer started by ``open`` and stopped by ``close``, so a run whose
    calls are all stuck still says so in the log.
    """

    name = "health_monitor"

    class Options(BaseModel):
        """Options of ``health_monitor``."""

        model_config = ConfigDict(extra="forbid")

        heartbeat_interval_s: float = Field(60.0, ge=0, description="seconds between heartbeat logs (0: never)")
        window: int = Field(1000, ge=1, description="latency percentiles over the last this many calls")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.refused = 0
        self.retries = 0
        self.heartbeats = 0
        self._latencies: deque[float] = deque(maxlen=options.window)
        self._in_flight: set[int] = set()  # ids of the metadata of calls seen by before_request, not yet ended
        self._timer: asyncio.Task[None] | None = None
        self._log = logging.getLogger("elspeth.health")

    async def open(self, ctx: PluginContext) -> None:
        """Start the heartbeat timer on the run's event loop."""
        if self.options.heartbeat_interval_s and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._beat_every(self.options.heartbeat_interval_s))

    async def close(self) -> None:
        """Stop the heartbeat timer."""
        timer, self._timer = self._timer, None
        if timer is None or timer.done():  # done: its loop ended (and cancelled it) before close
            return
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer

    async def _beat_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.heartbeats += 1
            self._log.info("heartbeat %s", json.dumps(self.summary()))

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Count the request."""
        self.requests += 1
        self._in_flight.add(id(request.metadata))
        return request

    def _ended(self, request: LLMRequest) -> None:
        if id(request.metadata) in self._in_flight:
            self._in_flight.discard(id(request.metadata))
        else:  # refused by a middleware further out, before this one saw the request
            self.requests += 1

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Count the success, its retries and its latency."""
        self._ended(request)
        self.successes += 1
        self.retries += response.attempts - 1
        self._latencies.append(response.latency_s)

    async def on_error(self, request: LLMRequest, error: LLMCallFailed) -> None:
        """Count the failure."""
        self._ended(request)
        self.failures += 1
        self.retries += len(error.attempts) - 1

    async def on_refused(self, request: LLMRequest, error: Exception, response: LLMResponse | None) -> None:
        """Count a call a middleware refused as a failure (its latency too, if the service answered)."""
        self._ended(request)
        self.failures += 1
        self.refused += 1
        if response is not None:
            self.retries += response.attempts - 1
            self._latencies.append(response.latency_s)

    def summary(self) -> dict[str, Any]:
        """Counts, failure rate and latency percentiles, for the run metadata."""
        ordered = sorted(self._latencies)
        done = self.successes + self.failures
        return {
            "requests": self.requests,
            "in_flight": len(self._in_flight),
            "successes": self.successes,
            "failures": self.failures,
            "refused": self.refused,
            "retries": self.retries,
            "failure_rate": self.failures / done if done else 0.0,
            "heartbeats": self.heartbeats,
            "latency_s": {
                "p50": _percentile(ordered, 0.50),
                "p95": _percentile(ordered, 0.95),
                "p99": _percentile(ordered, 0.99),
                "max": ordered[-1] if ordered else None,
                "window": len(ordered),
            },
        }
