"""The ``rows`` orchestrator: the smallest useful orchestration mode, for running settings in tests.

For each row it applies the settings' processors, renders the settings' ``prompts`` (if any), calls the
LLM pipeline and records the reply. Plugin authors use it to run their datasource, sink, client or
middleware end to end without depending on an orchestrator distribution. Registered by
:func:`elspeth_testing.build_registry` unless ``testing=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import (
    Failure,
    LLMRequest,
    OrchestrationContext,
    ProcessorFailed,
    PromptTemplate,
    Record,
    Registrar,
    Row,
    RunMetadata,
    RunResult,
    Table,
    check_template,
    hookimpl,
    run_rows,
)

__all__ = ["RowsOrchestrator", "register_orchestrators"]


class _RowFailed(Exception):
    def __init__(self, stage: str, error: str) -> None:
        super().__init__(error)
        self.stage = stage


class RowsOrchestrator:
    """Renders the prompts for each row, calls the LLM and records its reply (a test orchestrator)."""

    name = "rows"

    class Options(BaseModel):
        """Options of the ``rows`` orchestrator."""

        model_config = ConfigDict(extra="forbid")

        output: str = Field("response", description="the output column that holds the LLM's reply")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._system: PromptTemplate | None = None
        self._user: PromptTemplate | None = None

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        """Check the prompts against ``columns`` and that an LLM is configured when there are prompts."""
        checker = ctx.checker()
        prompts = ctx.loaded.settings.prompts
        if prompts is not None:
            if ctx.llm is None:
                checker.add(("prompts",), "prompts need an LLM client: set `llm` in the settings")
            self._system = check_template(prompts.system, ("prompts", "system"), checker, columns)
            self._user = check_template(prompts.user, ("prompts", "user"), checker, columns)
        checker.raise_if_any()

    async def _outputs(self, row: Row, ctx: OrchestrationContext) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._user is None or ctx.llm is None:
            return {}, {}
        try:
            system = self._system.render(row.data) if self._system is not None else ""
            user = self._user.render(row.data)
        except Exception as exc:  # a row whose values break the template fails on its own
            raise _RowFailed("render", str(exc)) from None
        request = LLMRequest(system=system, user=user, metadata={"run_id": ctx.run_id, "row_id": row.id, "attempt": 1})
        try:
            response = await ctx.llm.call(request)
        except Exception as exc:  # any client or middleware failure is this row's failure
            raise _RowFailed("llm", f"{type(exc).__name__}: {exc}") from None
        metrics = {
            **response.metrics,
            "latency_s": response.latency_s,
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
        }
        return {self.options.output: response.content}, metrics

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Process every row with ``ctx.concurrency`` in flight; failed rows become failures."""
        records: dict[int, Record] = {}
        failures: dict[int, Failure] = {}

        async def handle(row: Row) -> None:
            try:
                try:
                    row = await ctx.preprocess(row)
                except ProcessorFailed as exc:  # the row's failure, recorded as far as the processors got
                    row = exc.row
                    raise _RowFailed("processor", str(exc)) from None
                outputs, metrics = await self._outputs(row, ctx)
            except _RowFailed as exc:
                failure = Failure(row.id, row.data, exc.stage, str(exc), [{"attempt": 1, "error": str(exc)}])
                failures[row.index] = failure
                await ctx.commit_row(failure=failure)
                return
            record = Record(row.id, row.data, outputs, metrics)
            records[row.index] = record
            await ctx.commit_row(record=record)

        ctx.progress.start(None, "rows")
        try:
            started = await run_rows(table.rows, handle, concurrency=ctx.concurrency, cancel=ctx.cancel)
        finally:
            ctx.progress.finish()
        metadata = RunMetadata(
            run_id=ctx.run_id,
            name=ctx.name,
            orchestrator=self.name,
            rows=started,
            succeeded=len(records),
            failed=len(failures),
            status="stopped" if ctx.cancel.is_set() else "completed",
        )
        return RunResult(
            records=[records[i] for i in sorted(records)],
            failures=[failures[i] for i in sorted(failures)],
            aggregates={},
            metadata=metadata,
        )


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``rows`` orchestrator."""
    register(RowsOrchestrator)
