"""Builtin LLM middleware: ``audit_logger``, ``prompt_shield`` and ``health_monitor``."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from datetime import UTC, datetime
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth.config.settings import SECRET_KEYS
from elspeth.hookspecs import Registrar, hookimpl
from elspeth.llm_errors import LLMCallFailed, LLMContentRefused
from elspeth.orchestration.context import PluginContext
from elspeth.types import LLMRequest, LLMResponse

_REDACTED = "[redacted]"


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
            **{k: request.metadata.get(k) for k in ("run_id", "row_id", "experiment", "criterion", "llm")},
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

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        """Record the response with its timing and usage."""
        started = self._started.pop(id(request), None)
        extra: dict[str, Any] = {
            "latency_s": round(response.latency_s, 6),
            "elapsed_s": round(time.perf_counter() - started, 6) if started is not None else None,
            "attempts": response.attempts,
            "model": response.model,
            "cached": response.cached,
            "usage": {"prompt": response.usage.prompt_tokens, "completion": response.usage.completion_tokens},
        }
        if self.options.include_responses:
            extra["content"] = response.content
        self._write("response", request, **extra)
        return response

    async def on_error(self, request: LLMRequest, error: LLMCallFailed) -> None:
        """Record a call that failed for good, with its attempts."""
        self._started.pop(id(request), None)
        self._write("error", request, error=str(error), attempts=error.attempts)


class PromptShield:
    """Refuses, masks or logs denied terms and patterns in prompts (and optionally responses)."""

    name = "prompt_shield"

    class Options(BaseModel):
        """Options of ``prompt_shield``."""

        model_config = ConfigDict(extra="forbid")

        denied_terms: list[str] = Field(default_factory=list, description="words matched case-insensitively")
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
        parts = [re.escape(t) for t in options.denied_terms if t] + list(options.patterns)
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
    """Counts requests and failures, tracks latency percentiles, and logs a periodic heartbeat."""

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
        self.retries = 0
        self._latencies: deque[float] = deque(maxlen=options.window)
        self._last_beat = time.monotonic()
        self._log = logging.getLogger("elspeth.health")

    async def before_request(self, request: LLMRequest) -> LLMRequest:
        """Count the request."""
        self.requests += 1
        return request

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        """Count the success and its latency."""
        self.successes += 1
        self.retries += response.attempts - 1
        self._latencies.append(response.latency_s)
        self._beat()
        return response

    async def on_error(self, request: LLMRequest, error: LLMCallFailed) -> None:
        """Count the failure."""
        self.failures += 1
        self.retries += len(error.attempts) - 1
        self._beat()

    def _beat(self) -> None:
        interval = self.options.heartbeat_interval_s
        if interval and time.monotonic() - self._last_beat >= interval:
            self._last_beat = time.monotonic()
            self._log.info("heartbeat %s", json.dumps(self.summary()))

    def summary(self) -> dict[str, Any]:
        """Counts, failure rate and latency percentiles, for the run metadata."""
        ordered = sorted(self._latencies)
        done = self.successes + self.failures
        return {
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "retries": self.retries,
            "failure_rate": self.failures / done if done else 0.0,
            "latency_s": {
                "p50": _percentile(ordered, 0.50),
                "p95": _percentile(ordered, 0.95),
                "p99": _percentile(ordered, 0.99),
                "max": ordered[-1] if ordered else None,
                "window": len(ordered),
            },
        }


@hookimpl
def register_llm_middleware(register: Registrar) -> None:
    """Register the builtin middleware."""
    register(AuditLogger)
    register(PromptShield)
    register(HealthMonitor)
