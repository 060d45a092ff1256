"""The ``batch`` orchestrator: render the prompts for each row, call the LLM, map the reply to new columns.

Rows stream: they are pulled from the datasource as workers free up, finished rows go through a
bounded reorder buffer into disk-backed spools in input order, and the sinks read the spools. Memory
stays flat however many rows the run has.

Each row is committed to the run store the moment it finishes, before it enters the reorder buffer:
the buffer orders only the output. A killed run therefore repeats at most the calls that were in
flight (never more than ``concurrency``), not the finished rows waiting in the buffer for an earlier one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from elspeth import (
    Failure,
    LLMRequest,
    Record,
    Row,
    RowCounts,
    RowFailed,
    RowRunner,
    RunResult,
    SpoolWriter,
    Table,
    check_needed_fields,
    close_plugins,
    invoke,
    open_plugins,
    plugin_summaries,
)
from elspeth_batch.mapping import MISSING, ReplyError, parse_reply, pick, split_path
from elspeth_batch.options import BatchOptions
from elspeth_batch.totals import Totals

if TYPE_CHECKING:
    from elspeth import LLMPipeline, OrchestrationContext, PromptTemplate

__all__ = ["BatchOrchestrator"]

Finished = Record | Failure


def _excerpt(text: str, limit: int = 80) -> str:
    """The start of a reply, quoted, for an error message."""
    flat = " ".join(text.split())
    return f"began {flat[:limit]!r}..." if len(flat) > limit else f"was {flat!r}"


class BatchOrchestrator:
    """One LLM call per row, its reply mapped to new columns (raw text or JSON fields), streamed to the sinks."""

    name = "batch"
    Options = BatchOptions
    uses_prompts = True

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self._system: PromptTemplate | None = None
        self._user: PromptTemplate | None = None
        self._static_system: str | None = None
        self._llm: LLMPipeline | None = None
        self._post: list[tuple[str, Any]] = []
        self._checked = False

    # checking -------------------------------------------------------------------------------
    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        """Check the prompts against the row's fields, that an LLM is set, the JSON paths and the post-processors.

        Raises:
            elspeth.ConfigError: every problem found, each with its line in the settings file.

        """
        checker = ctx.checker()
        base = ctx.options_loc
        from elspeth import TemplateError, check_template  # Jinja2 loads when a run needs it, not on `plugins list`

        prompts = ctx.loaded.settings.prompts
        fields = ctx.available_fields(columns)
        if prompts is None:
            checker.add(
                ("orchestrator",),
                "the batch orchestrator renders a prompt for each row: add `prompts` with at least `user` "
                "to the settings",
            )
        else:
            if prompts.system:
                self._system = check_template(prompts.system, ("prompts", "system"), checker, fields)
            self._user = check_template(prompts.user, ("prompts", "user"), checker, fields)
        self._static_system = None
        if self._system is not None and not self._system.fields:
            # a system prompt that reads no field is the same for every row: rendered once here
            with contextlib.suppress(TemplateError):  # then it fails each row at render, saying why
                self._static_system = self._system.render({})
        self._llm = ctx.llm
        if ctx.llm is None:
            checker.add(
                ("orchestrator",), "the batch orchestrator calls an LLM for each row: set `llm` in the settings"
            )
        for column, path in self.options.json_fields.items():
            try:
                split_path(path)
            except ValueError as exc:
                checker.add((*base, "json_fields", column), str(exc))
            if not column:
                checker.add((*base, "json_fields"), "an output column name may not be empty")
            if self.options.include_raw and column == self.options.output_field:
                checker.add(
                    (*base, "json_fields", column),
                    f"'{column}' is also output_field, which holds the raw reply with include_raw: rename one of them",
                )
        self._post = ctx.build_plugins("processor", self.options.post_processors, (*base, "post_processors"), checker)
        checker.raise_if_any()
        # post-processors see the row's fields with the output columns over them
        outputs = [self.options.output_field, *self.options.json_fields]
        if self.options.on_parse_error == "keep_raw":
            outputs.append("parse_error")
        steps = [
            ((*base, "post_processors", i), f"post-processor '{name}'", plugin)
            for i, (name, plugin) in enumerate(self._post)
        ]
        check_needed_fields(list(dict.fromkeys([*fields, *outputs])), steps, checker)
        checker.raise_if_any()
        self._checked = True

    # one row --------------------------------------------------------------------------------
    def _map(self, content: str) -> tuple[dict[str, Any], str | None]:
        """The output columns for a reply, and why it could not be parsed (None if it could)."""
        opts = self.options
        if not opts.json_fields:
            return {opts.output_field: content}, None
        outputs: dict[str, Any] = {opts.output_field: content} if opts.include_raw else {}
        try:
            parsed = parse_reply(content)
        except ReplyError as exc:
            return outputs | dict.fromkeys(opts.json_fields), str(exc)
        missing = []
        for column, path in opts.json_fields.items():
            value = pick(parsed, path)
            if value is MISSING:
                missing.append(f"'{path}' (json_fields.{column})")
                value = None
            outputs[column] = value
        if missing:
            return outputs, f"the reply's JSON has no {', '.join(missing)}"
        return outputs, None

    def _render(self, row: Row) -> tuple[str, str]:
        from elspeth import TemplateError

        assert self._user is not None
        try:
            system = self._static_system
            if system is None:
                system = self._system.render(row.data) if self._system is not None else ""
            return system, self._user.render(row.data)
        except TemplateError as exc:
            raise RowFailed("render", str(exc)) from None

    async def _post_process(self, row: Row, outputs: dict[str, Any]) -> dict[str, Any]:
        data: Mapping[str, Any] = {**row.data, **outputs}
        for name, plugin in self._post:
            try:
                changed = await invoke(plugin.process, data)
            except Exception as exc:  # a post-processor's failure is the row's, with the plugin named
                raise RowFailed(f"processor:{name}", f"{type(exc).__name__}: {exc}", outputs) from None
            if changed is not None:
                data = changed
        inputs = row.data
        # what the post-processors added, or changed from the input, is output; untouched inputs are not
        return {k: v for k, v in data.items() if k in outputs or k not in inputs or v != inputs[k]}

    async def _record(self, row: Row, totals: Totals, run_id: str) -> Record:
        assert self._llm is not None
        system, user = self._render(row)
        metadata = {"run_id": run_id, "row_id": row.id}
        request = LLMRequest(system=system, user=user, params=dict(self.options.params), metadata=metadata)
        try:
            response = await self._llm.call(request)
        except Exception as exc:  # any client or middleware failure becomes this row's failure
            raise RowFailed.from_call(exc) from None
        metrics: dict[str, Any] = {
            "latency_s": round(response.latency_s, 6),
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
            "attempts": response.attempts,
        }
        if response.metrics.get("cost") is not None:
            metrics["cost"] = response.metrics["cost"]
        if response.cached:
            metrics["cached"] = True  # answered from the response cache: no call was made, nothing paid
        outputs, problem = self._map(response.content)
        if problem is not None:
            if self.options.on_parse_error == "fail":
                problem = f"{problem}; the reply {_excerpt(response.content)}"
                raise RowFailed("parse", problem, {self.options.output_field: response.content})
            outputs[self.options.output_field] = response.content
            outputs["parse_error"] = problem
            totals.parse_errors_kept += 1
        if self._post:
            outputs = await self._post_process(row, outputs)
        return Record(row_id=row.id, inputs=row.data, outputs=outputs, metrics=metrics)

    # the run --------------------------------------------------------------------------------
    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Process every row with ``ctx.concurrency`` in flight; records and failures stream to spools in order."""
        if not self._checked:
            self.check(table.columns, ctx)
        opts = self.options
        totals = Totals()
        folder = ctx.plugin_context.output_dir
        # the buffer orders the output only: every row is committed by the runner as it finishes
        writer = SpoolWriter(
            folder / opts.spool_dir if opts.spool_dir else folder,
            window=opts.reorder_window or max(64, 4 * ctx.concurrency),
            cancel=ctx.cancel,
            chunk_size=opts.chunk_size,
        )

        def keep(position: int, item: Finished | None) -> Any:
            if isinstance(item, Failure):
                totals.stages[item.stage] += 1
            return writer.put(position, item)

        async def work(row: Row, ctx: OrchestrationContext) -> Record:
            return await self._record(row, totals, ctx.run_id)

        # every row is committed by the runner as it finishes, before it enters the buffer, which orders the output only
        runner = RowRunner(ctx, work, description="batch", keep=keep)
        started_at = time.perf_counter()
        try:
            await open_plugins(self._post, ctx.plugin_context, label="post-processor", option="post_processors")
        except BaseException:
            writer.close()
            raise
        try:
            counts = await runner.run(table.rows)
            writer.finish()
        except BaseException:
            writer.close()
            raise
        finally:
            await close_plugins(self._post)
        wall = time.perf_counter() - started_at
        result = self._result(writer, counts, wall, totals, ctx)
        counted = await plugin_summaries(self._post)
        if counted:  # what each post-processor counted (pii_redaction's findings per kind, ...)
            result.metadata.extra["post_processors"] = counted
        return result

    def _result(
        self,
        writer: SpoolWriter,
        counts: RowCounts,
        wall: float,
        totals: Totals,
        ctx: OrchestrationContext,
    ) -> RunResult:
        records, failures = writer.records, writer.failures
        done = len(records) + len(failures)
        spent = ctx.ledger.attempt  # this attempt's (cache hits, latency)
        run = ctx.ledger.total()  # every attempt's, a resumed run's earlier ones included (calls, tokens, cost)
        tracked = ctx.llm is not None and ctx.llm.cost_tracker is not None
        priced = (spent.priced or ctx.ledger.earlier.cost > 0) and tracked
        extra: dict[str, Any] = {
            "llm_calls": run.llm_calls,
            "cache_hits": spent.cache_hits,
            "tokens": {
                "prompt": run.prompt_tokens,
                "completion": run.completion_tokens,
                "total": run.prompt_tokens + run.completion_tokens,
            },
            "cost_total": round(run.cost, 10) if priced else None,
            "timings": {
                "rows_s": round(wall, 6),
                "rows_per_s": round(done / wall, 2) if wall > 0 else None,
                "llm_latency_s_total": round(spent.latency_s, 6),
                "llm_latency_s_mean": round(spent.latency_s / spent.llm_calls, 6) if spent.llm_calls else None,
            },
            "failures_by_stage": dict(sorted(totals.stages.items())),
            "reorder_buffer_peak": writer.peak_buffered,
            "not_run": counts.not_run,
        }
        if totals.parse_errors_kept:
            extra["parse_errors_kept"] = totals.parse_errors_kept
        metadata = counts.metadata(ctx, self.name, extra)
        aggregates = {
            "rows": counts.started,
            "succeeded": len(records),
            "failed": len(failures),
            "not_run": counts.not_run,
            "failures_by_stage": extra["failures_by_stage"],
            "tokens": extra["tokens"],
            "cost_total": extra["cost_total"],
        }
        return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)

    def summary(self, result: RunResult) -> list[str]:
        """A line for the terminal: rows, failures by stage, rows not run, cache hits, tokens, cost and throughput."""
        meta = result.metadata.extra
        line = f"batch: {result.metadata.succeeded} ok, {result.metadata.failed} failed"
        stages = meta.get("failures_by_stage") or {}
        if stages:
            line += " (" + ", ".join(f"{stage} {n}" for stage, n in stages.items()) + ")"
        if meta.get("not_run"):
            line += f", {meta['not_run']:,} not run"
        if meta.get("cache_hits"):
            line += f", {meta['cache_hits']:,} from the cache"
        tokens = (meta.get("tokens") or {}).get("total")
        if tokens:
            line += f"; {tokens:,} tokens"
        if meta.get("cost_total") is not None:
            line += f", cost {meta['cost_total']:.4f}"
        rate = (meta.get("timings") or {}).get("rows_per_s")
        if rate:
            line += f"; {rate:,.0f} rows/s"
        return [line]
