"""The ``validation`` orchestrator: every row through the processors and the rules, no LLM call.

Valid rows become records, rejected rows failures with stage ``validation:<rule>`` and every reason.
Rows stream like the batch orchestrator's: in input order, through disk-backed spools, with flat memory.
When there are no processors, utilities that enrich rows, or rule plugins, rows are checked in one
loop without a task per row. That saves the task's overhead only: with the run store on (the default)
every row's commit costs more than its checks, so the loop gains little unless the store is off
(``benchmarks/validation/bench.py`` measures both).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from elspeth import (
    DeclaredPath,
    Failure,
    Record,
    Row,
    RowCounts,
    RowFailed,
    RowRunner,
    RunResult,
    SpoolWriter,
    Table,
    ValidationFailed,
    check_needed_fields,
    close_plugins,
    invoke,
    open_plugins,
    output_target,
    plugin_summaries,
)
from elspeth_validation.options import ValidationOptions
from elspeth_validation.rejects import RejectsFile
from elspeth_validation.rules import BuiltinRules, Violation, compile_rules, verdict

if TYPE_CHECKING:
    from elspeth import OrchestrationContext, PluginContext

__all__ = ["ValidationOrchestrator"]

log = logging.getLogger("elspeth.validation")

Finished = Record | Failure
_COMMIT_EVERY = 512  # rows per run-store transaction


def _rejected(violations: list[Violation]) -> RowFailed:
    """The row's rejection: stage ``validation:<first rule>``, every reason, the violations as its output."""
    error = "; ".join(v.reason for v in violations)
    return RowFailed(f"validation:{violations[0].rule}", error, {"violations": [v.to_dict() for v in violations]})


def _failure(row: Row, violations: list[Violation]) -> Failure:
    return _rejected(violations).failure(row, None)


class ValidationOrchestrator:
    """Checks every row against built-in rules and rule plugins without any LLM; valid rows and rejects."""

    name = "validation"
    Options = ValidationOptions
    uses_prompts = False  # `prompts` in the settings are reported as ignored by `elspeth validate` and `run`
    # a rejected row is this run's answer about that row, not a breakdown: all rows rejected is a finished run
    failures_are_verdicts = True

    def __init__(self, options: ValidationOptions) -> None:
        self.options = options
        self._builtin: BuiltinRules | None = None
        self._rules: list[tuple[str, Any]] = []
        self._fields: list[str] = []

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        """Check that every column a rule names exists (processors' added fields count), and the rule plugins.

        Raises:
            elspeth.ConfigError: every problem found, each with its line in the settings file.

        """
        checker = ctx.checker()
        base = ctx.options_loc
        self._fields = ctx.available_fields(columns)
        self._builtin = compile_rules(self.options, self._fields, base, checker)
        self._rules = ctx.build_plugins("processor", self.options.rules, (*base, "rules"), checker, label="rule")
        if len(self._rules) == len(self.options.rules):  # rules run on the row after the processors
            steps = [((*base, "rules", i), f"rule '{name}'", rule) for i, (name, rule) in enumerate(self._rules)]
            check_needed_fields(self._fields, steps, checker)
        if not self._builtin.checks and self._builtin.unique is None and not self.options.rules:
            checker.add(
                ("orchestrator",),
                "the validation orchestrator has no rule to check: set `required`, `patterns`, `ranges`, "
                "`allowed`, `unique` or `rules` in its options",
            )
        checker.raise_if_any()

    # one row --------------------------------------------------------------------------------
    async def _plugin_violations(self, data: Mapping[str, Any]) -> list[Violation]:
        found = []
        for name, rule in self._rules:
            try:
                violation = verdict(name, await invoke(rule.process, data))
            except ValidationFailed as exc:
                violation = Violation(name, exc.reason)
            except Exception as exc:  # a rule that raises rejects the row, naming what it raised
                violation = Violation(name, f"{type(exc).__name__}: {exc}")
            if violation is not None:
                found.append(violation)
                if not self.options.all_reasons:
                    break
        return found

    def _judge(self, row: Row, ctx: OrchestrationContext) -> Record:
        """The built-in rules only: a plain ``def``, so without processors rows run in one loop, no task each."""
        assert self._builtin is not None
        violations = self._builtin(row.data)
        if violations:
            raise _rejected(violations)
        return Record(row_id=row.id, inputs=row.data)

    async def _check(self, row: Row, ctx: OrchestrationContext) -> Record:
        """The built-in rules, then the rule plugins (also after a built-in rejection, with ``all_reasons``)."""
        try:
            record = self._judge(row, ctx)
        except RowFailed as exc:
            if not self.options.all_reasons:
                raise
            more = await self._plugin_violations(row.data)
            if more:
                raise _rejected([Violation(**v) for v in exc.output["violations"]] + more) from None
            raise
        more = await self._plugin_violations(row.data)
        if more:
            raise _rejected(more)
        return record

    # the run --------------------------------------------------------------------------------
    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The rejects file, when there is one: it must not replace a file the run reads."""
        path = self.options.rejects_path
        return [DeclaredPath("rejects_path", output_target(ctx, path))] if path else []

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Judge every row; valid rows and rejects stream to spools (and ``rejects_path``) in input order."""
        if self._builtin is None:
            self.check(table.columns, ctx)
        await self._open(ctx)
        try:
            result = await self._run(table, ctx)
            summaries = await plugin_summaries(self._rules)
        finally:
            await self._close()
        if summaries:  # what each rule plugin counted (schema_validation's checked and failed, ...)
            result.metadata.extra["rules"] = summaries
        return result

    async def _open(self, ctx: OrchestrationContext) -> None:
        """Open every rule plugin that has ``open`` (a schema_path is read there) before the first row."""
        await open_plugins(self._rules, ctx.plugin_context, label="rule", option="rules")

    async def _close(self) -> None:
        await close_plugins(self._rules)

    async def _run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        opts = self.options
        stages: Counter[str] = Counter()
        unique = self._builtin.unique if self._builtin is not None else None
        folder = ctx.plugin_context.output_dir
        rejects = None
        if opts.rejects_path:
            target = ctx.plugin_context.output_path(opts.rejects_path)
            rejects = RejectsFile(target, self._fields, sanitize=opts.sanitize_formulas)

        def ordered(item: Finished) -> Finished:
            # in input order: the first occurrence of a value is the one kept
            if unique is not None:
                repeats = unique(item.row_id, item.inputs)
                if repeats:
                    earlier = [Violation(**v) for v in item.output["violations"]] if isinstance(item, Failure) else []
                    if not earlier or opts.all_reasons:
                        item = _failure(Row(item.row_id, item.inputs, 0), earlier + repeats)
            if isinstance(item, Failure):
                stages[item.stage] += 1
                if rejects is not None:
                    rejects.add(item)
                unsaved.append((None, item))
            else:
                unsaved.append((item, None))
            if len(unsaved) >= _COMMIT_EVERY:
                save()
            return item

        # no LLM call is lost by redoing a row: commit in groups, not one transaction per row
        unsaved: list[tuple[Record | None, Failure | None]] = []

        def save() -> None:
            ctx.commit_rows(unsaved)
            unsaved.clear()

        writer = SpoolWriter(
            folder / opts.spool_dir if opts.spool_dir else folder,
            window=opts.reorder_window or max(64, 4 * ctx.concurrency),
            cancel=ctx.cancel,
            chunk_size=opts.chunk_size,
            on_ordered=ordered,
        )
        # verdicts are final only in input order (uniqueness): committed from `ordered`, in groups, not by the runner
        work = self._check if self._rules else self._judge
        runner = RowRunner(ctx, work, description="validation", keep=writer.put, commit=False, resume=False)
        started_at = time.perf_counter()
        try:
            counts = await runner.run(table.rows)
            writer.finish()
            save()
            artifact = rejects.commit() if rejects is not None else None
        except BaseException:
            writer.close()
            if rejects is not None:
                rejects.discard()
            raise
        wall = time.perf_counter() - started_at
        return self._result(writer, counts, wall, stages, artifact, ctx)

    def _result(
        self,
        writer: SpoolWriter,
        counts: RowCounts,
        wall: float,
        stages: Counter[str],
        artifact: Any,
        ctx: OrchestrationContext,
    ) -> RunResult:
        records, failures = writer.records, writer.failures
        done = len(records) + len(failures)
        by_stage = dict(sorted(stages.items()))
        extra: dict[str, Any] = {
            "rejected_by_rule": by_stage,
            "timings": {"rows_s": round(wall, 6), "rows_per_s": round(done / wall, 2) if wall > 0 else None},
            "reorder_buffer_peak": writer.peak_buffered,
        }
        if artifact is not None:
            extra["rejects_path"] = str(artifact.path)
        metadata = counts.metadata(ctx, self.name, extra)
        if artifact is not None:  # listed like a sink's file, so the CLI shows it and a signed bundle covers it
            metadata.artifacts = [replace(artifact, security_level=ctx.plugin_context.security_level)]
        metadata.succeeded, metadata.failed = len(records), len(failures)  # after the uniqueness check, in order
        aggregates = {
            "rows": counts.started,
            "valid": len(records),
            "rejected": len(failures),
            "rejected_by_rule": by_stage,
        }
        return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)

    def summary(self, result: RunResult) -> list[str]:
        """A line for the terminal: valid and rejected rows, by rule, and throughput."""
        meta = result.metadata
        line = f"validation: {meta.succeeded} valid, {meta.failed} rejected"
        by_rule = meta.extra.get("rejected_by_rule") or {}
        if by_rule:
            line += " (" + ", ".join(f"{k.removeprefix('validation:')} {n}" for k, n in by_rule.items()) + ")"
        rate = (meta.extra.get("timings") or {}).get("rows_per_s")
        if rate:
            line += f"; {rate:,.0f} rows/s"
        lines = [line]
        if meta.extra.get("rejects_path"):
            lines.append(f"rejects: {meta.extra['rejects_path']}")
        return lines
