"""The ``streaming`` orchestrator: each message of an endless source through the row runner, emitted as it finishes.

Core's row runner does what it does for every mode: at most ``concurrency`` messages in flight,
the settings' processors, the LLM pipeline (middleware, controls, retries, cache), failures, and the
commit of each result to the run store before its worker takes another message. This module adds
what streaming needs: messages read only as workers free up, results handed to the streaming sinks as
they finish (:mod:`elspeth_streaming.emitter`: commit, emit, mark emitted, acknowledge), malformed
messages recorded as failures without stopping the stream, and a summary. A slow LLM holds the
workers and a slow sink fills the emit queue, and either way the source is read more slowly: memory
stays flat however long the stream runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from elspeth import Acknowledges, Failure, LLMRequest, Record, Row, RowFailed, RowRunner, RunResult, StreamSink, Table
from elspeth_streaming.emitter import Emitter
from elspeth_streaming.messages import Messages
from elspeth_streaming.options import StreamingOptions
from elspeth_streaming.status import StatusLine
from elspeth_streaming.windowing import Windowing
from elspeth_streaming.windows import WindowSpec, build_windows

if TYPE_CHECKING:
    from elspeth import OrchestrationContext, PromptTemplate

__all__ = ["StreamingOrchestrator"]

Finished = Record | Failure


class StreamingOrchestrator:
    """Each message through processors and an optional LLM call, emitted to streaming sinks as it finishes."""

    name = "streaming"
    Options = StreamingOptions
    uses_prompts = True
    streams = True
    """A streaming mode: a signal ends it as its input's end does (drained, flushed, exit status 0, still
    resumable), and ``elspeth run --max-messages`` bounds it."""

    def __init__(self, options: StreamingOptions) -> None:
        self.options = options
        self._system: PromptTemplate | None = None
        self._user: PromptTemplate | None = None
        self._sinks: list[tuple[str, Any]] = []
        self._windows: list[WindowSpec] = []
        self._checked = False

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        """Check the prompts against the messages' declared fields, the LLM, and that a sink streams.

        Raises:
            elspeth.ConfigError: every problem found, each with its line in the settings file.

        """
        from elspeth import check_template  # Jinja2 loads when a run needs it

        checker = ctx.checker()
        prompts = ctx.loaded.settings.prompts
        fields = ctx.available_fields(columns)
        if prompts is not None:
            if ctx.llm is None:
                checker.add(("prompts",), "the streaming orchestrator sends these prompts to an LLM: set `llm` too")
            if prompts.system:
                self._system = check_template(prompts.system, ("prompts", "system"), checker, fields)
            self._user = check_template(prompts.user, ("prompts", "user"), checker, fields)
        elif ctx.llm is not None:
            checker.add(("llm",), "the streaming orchestrator calls the LLM with the settings' `prompts`: add them")
        self._sinks = [(name, sink) for name, sink in ctx.sinks if isinstance(sink, StreamSink)]
        if not self._sinks:
            names = ", ".join(name for name, _ in ctx.sinks) or "none"
            checker.add(
                ("sinks",),
                f"the streaming orchestrator emits each result as it finishes, to sinks that stream (with `emit`, "
                f"such as jsonl_stream); these sinks do not: {names}",
            )
        self._windows = build_windows(self.options.windows, ctx, checker)
        checker.raise_if_any()
        self._checked = True

    async def work(self, row: Row, ctx: OrchestrationContext) -> Record:
        """One message, as the processors left it: the prompt, the LLM's reply (if the settings call one)."""
        if self._user is None or ctx.llm is None:
            return Record(row.id, row.data, {})
        from elspeth import TemplateError

        try:
            system = self._system.render(row.data) if self._system is not None else ""
            user = self._user.render(row.data)
        except TemplateError as exc:
            raise RowFailed("render", str(exc)) from None
        request = LLMRequest(
            system=system,
            user=user,
            params=dict(self.options.params),
            metadata={"run_id": ctx.run_id, "row_id": row.id},
        )
        try:
            reply = await ctx.llm.call(request)
        except Exception as exc:  # attempts exhausted, not retryable, refused by a middleware
            raise RowFailed.from_call(exc) from None
        metrics: dict[str, Any] = {"latency_s": round(reply.latency_s, 6), "attempts": reply.attempts}
        for name in ("cost", "score"):  # a window's cost and mean score read them
            if reply.metrics.get(name) is not None:
                metrics[name] = reply.metrics[name]
        return Record(row.id, row.data, {self.options.output_field: reply.content}, metrics)

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Consume the stream until it ends or the run is stopped; every result is emitted before this returns."""
        if not self._checked:
            self.check(table.columns, ctx)
        opts = self.options
        ack = table.rows.ack if isinstance(table.rows, Acknowledges) else None
        limit = opts.emit_queue or max(64, 4 * ctx.concurrency)
        arrived: dict[str, float] = {}  # message id -> when it was read, until its result is queued for the sinks
        windows = Windowing(self._windows, lambda: min(arrived.values(), default=None)) if self._windows else None
        linger = opts.emit_linger_ms / 1000
        emitter = Emitter(ctx, self._sinks, ack, batch=opts.emit_batch, limit=limit, linger=linger, windows=windows)
        messages = Messages(
            table.rows,
            ctx,
            emitter,
            cancel=ctx.cancel,
            max_messages=ctx.max_messages,
            poll=opts.poll_seconds,
            ahead=ctx.concurrency,
            arrived=arrived,
        )

        kept = [0, 0]  # results kept, failures among them

        async def keep(position: int, item: Finished | None) -> None:
            if item is not None:  # committed by the runner before it is kept
                kept[0] += 1
                kept[1] += isinstance(item, Failure)
                await emitter.put(item, messages.arrived.pop(item.row_id, time.monotonic()))

        def so_far() -> tuple[int, int, int]:
            return messages.taken, kept[0] + messages.malformed, kept[1] + messages.malformed

        status = StatusLine(ctx, table.rows, so_far, opts.progress_seconds)
        runner = RowRunner(ctx, self.work, description="messages", keep=keep, count_rows=False)
        started = time.perf_counter()
        await emitter.start()
        ticker = asyncio.ensure_future(status.run())
        try:
            counts = await runner.run(messages)
            await emitter.finish()
        except BaseException:
            await emitter.abort()
            raise
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        await status.show()
        elapsed = time.perf_counter() - started
        counts.started += messages.malformed
        counts.failed += messages.malformed
        counts.not_run = 0  # an endless source has no "rest of the input"
        aggregates = _aggregates(messages, emitter, counts.started, elapsed)
        return RunResult([], [], aggregates, counts.metadata(ctx, self.name, {"streaming": aggregates}))

    def summary(self, result: RunResult) -> list[str]:
        """The lines ``elspeth run`` prints under its total."""
        a = result.aggregates
        return [
            f"streaming: {a['messages']} messages ({a['malformed']} malformed), {a['emitted']} results emitted, "
            f"{a['messages_per_s']:.1f} messages/s; latency p50 {a['latency_p50_ms']:.1f} ms, "
            f"p99 {a['latency_p99_ms']:.1f} ms" + (f"; {a['windows']} window records" if self._windows else "")
        ]


def _aggregates(messages: Messages, emitter: Emitter, total: int, elapsed: float) -> dict[str, Any]:
    counts = emitter.counts
    latencies = sorted(counts.latencies)

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else 0.0

    return {
        "messages": total,
        "malformed": messages.malformed,
        "emitted": counts.emitted,
        "already_emitted": counts.already_emitted,
        "held_by_sinks": counts.held_by_sinks,
        "acknowledged": counts.acknowledged,
        "emits": counts.emits,
        "windows": counts.windows,
        "messages_per_s": round(total / elapsed, 3) if elapsed > 0 else 0.0,
        "latency_p50_ms": pct(0.5),
        "latency_p99_ms": pct(0.99),
        "latency_mean_ms": round(1000 * statistics.fmean(latencies), 3) if latencies else 0.0,
    }
