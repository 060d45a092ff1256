"""Windows over the stream: running aggregates of every ``every`` messages or every ``seconds``, emitted as records.

A window counts the results the emitter hands to the sinks for the first time in this attempt (a
result an earlier attempt emitted was counted there). A count window closes once it holds ``every``
results; a time window holds the messages that *arrived* (were read) within its ``seconds``
(tumbling, from the start of the run), and closes once its time is over and no message that arrived
within it is still in flight or waiting for the sinks, so it counts each of its messages. At the
run's end a window still open is emitted with ``partial: true``; an empty one is not emitted.

A window's figures are an :class:`elspeth.Record` of group ``window`` whose id is
``window:NAME:SEQ``, emitted to the streaming sinks and marked emitted in the run store like a
result: a resumed run starts after the last window the earlier attempts emitted (or a sink holds),
so none is emitted twice. The experiment's aggregator plugins (``cost_summary``, ``latency_summary``,
``score_stats``, ...) are built from the registry and run on each window's records.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Failure, PluginRef, Record, invoke

if TYPE_CHECKING:
    from elspeth import Checker, OrchestrationContext, Resolved

__all__ = ["WINDOW_GROUP", "OpenWindow", "WindowOptions", "WindowSpec", "build_windows"]

log = logging.getLogger(__name__)

WINDOW_GROUP = "window"
"""The ``group`` of a window's record: how a sink tells a window from a message's result."""
_SAMPLE = 10_000  # latencies kept per window for its percentiles (exact below this many results)


class WindowOptions(BaseModel):
    """One window of the ``windows`` option: ``every`` N messages or every ``seconds`` (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="the window's name (default every-N or Ns)"
    )
    every: int | None = Field(None, ge=1, description="a count window: close after this many messages")
    seconds: float | None = Field(None, gt=0, description="a time window: the messages that arrived in these seconds")
    score_field: str | None = Field(
        None, min_length=1, description="the metric or output holding each result's score, for `score_mean`"
    )
    aggregators: list[PluginRef] = Field(
        default_factory=list, description="aggregator plugins (the experiment's) run on each window's records"
    )


@dataclass
class WindowSpec:
    """A checked window: its name, its bound, what it scores and its built aggregators ``(key, plugin)``."""

    name: str
    every: int | None
    seconds: float | None
    score_field: str | None
    aggregators: list[tuple[str, Any]] = field(default_factory=list)
    next_seq: int = 1

    def record_id(self, seq: int) -> str:
        """The id of this window's ``seq``-th record (the same in every attempt of the run)."""
        return f"window:{self.name}:{seq}"


def build_windows(windows: Sequence[WindowOptions], ctx: OrchestrationContext, checker: Checker) -> list[WindowSpec]:
    """Check the ``windows`` option and build each window's aggregators; problems go to ``checker`` at their field."""
    from elspeth import keyed_plugins

    specs: list[WindowSpec] = []
    names: set[str] = set()
    for i, options in enumerate(windows):
        loc = (*ctx.options_loc, "windows", i)
        if options.every is None and options.seconds is None:
            checker.add(loc, "a window needs `every: N` messages or `seconds: S`")
            continue
        if options.every is not None and options.seconds is not None:
            checker.add((*loc, "every"), "a window is `every: N` messages or `seconds: S`, exactly one of them")
            continue
        name = options.name or (f"every-{options.every}" if options.every else f"{options.seconds:g}s")
        if name in names:
            checker.add((*loc, "name"), f"two windows are named '{name}': give each its own `name`")
            continue
        names.add(name)

        def summarises(plugin: Any, resolved: Resolved, where: tuple[str | int, ...]) -> bool:
            if callable(getattr(plugin, "finalize", None)):
                return True
            checker.add(where, f"aggregator '{resolved.info.name}' has no finalize(records): it cannot sum up a window")
            return False

        where = (*loc, "aggregators")
        built = ctx.build_plugins("aggregator", options.aggregators, where, checker, prepare=summarises)
        specs.append(WindowSpec(name, options.every, options.seconds, options.score_field, keyed_plugins(built)))
    return specs


def _score(item: Record, field_name: str) -> float | None:
    for source in (item.metrics, item.outputs):
        value = source.get(field_name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OpenWindow:
    """The running figures of one window until it closes."""

    def __init__(self, spec: WindowSpec, start: float, end: float | None) -> None:
        self.spec, self.start, self.end = spec, start, end
        self.opened_wall = time.time() - (time.monotonic() - start)
        self.messages = self.failures = self.scored = 0
        self.score_sum = 0.0
        self.cost: float | None = None
        self.latencies: list[float] = []
        self.records: list[Record] = []
        self._random = random.Random(int(start * 1000))

    def add(self, item: Record | Failure, latency: float) -> None:
        """Count one result (``latency``: seconds from its message's arrival to its emission)."""
        self.messages += 1
        cost = item.metrics.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = (self.cost or 0.0) + float(cost)
        if len(self.latencies) < _SAMPLE:
            self.latencies.append(latency)
        else:  # a uniform sample of the window's latencies keeps a long time window's memory flat
            slot = self._random.randrange(self.messages)
            if slot < _SAMPLE:
                self.latencies[slot] = latency
        if isinstance(item, Failure):
            self.failures += 1
            return
        if self.spec.score_field is not None:
            score = _score(item, self.spec.score_field)
            if score is not None:
                self.scored += 1
                self.score_sum += score
        if self.spec.aggregators:
            self.records.append(item)

    async def close(self, seq: int, *, partial: bool) -> Record:
        """The window's record, the ``seq``-th of its name (its aggregators run now), and its log line."""
        spec = self.spec
        figures: dict[str, Any] = {"kind": "window", "window": spec.name, "seq": seq, "partial": partial}
        figures |= {"every": spec.every} if spec.every is not None else {"seconds": spec.seconds}
        figures |= {"start": _iso(self.opened_wall), "end": _iso(time.time())}
        figures |= {"messages": self.messages, "failures": self.failures, "cost": self.cost}
        if spec.score_field is not None:
            figures["score_field"] = spec.score_field
            figures["scored"] = self.scored
            figures["score_mean"] = self.score_sum / self.scored if self.scored else None
        figures |= _percentiles(self.latencies)
        if spec.aggregators:
            figures["aggregates"] = {key: await _summary(key, plugin, self.records) for key, plugin in spec.aggregators}
        log.info("%s", _log_line(figures))
        return Record(spec.record_id(seq), {}, figures, {}, WINDOW_GROUP)


async def _summary(key: str, aggregator: Any, records: list[Record]) -> Any:
    try:
        return await invoke(aggregator.finalize, records)
    except Exception as exc:  # an aggregator's bug must not cost the window: its error stands in its place
        log.warning("aggregator %s failed on a window: %s", key, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _percentiles(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None}
    if len(latencies) == 1:
        return {f"latency_p{q}_ms": round(1000 * latencies[0], 3) for q in (50, 95, 99)}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {f"latency_p{q}_ms": round(1000 * cuts[q - 1], 3) for q in (50, 95, 99)}


def _log_line(f: dict[str, Any]) -> str:
    head = f"window {f['window']} #{f['seq']}{' (partial)' if f['partial'] else ''}"
    parts = [f"{f['messages']} messages", f"{f['failures']} failures"]
    if f.get("score_mean") is not None:
        parts.append(f"mean score {f['score_mean']:.4g}")
    if f["cost"] is not None:
        parts.append(f"cost {f['cost']:.6g}")
    if f["latency_p50_ms"] is not None:
        parts.append(
            f"latency p50 {f['latency_p50_ms']:.1f} ms, p95 {f['latency_p95_ms']:.1f}, p99 {f['latency_p99_ms']:.1f}"
        )
    return f"{head}: {', '.join(parts)}"
