"""The ``rows`` orchestrator: the smallest useful orchestration mode, for running settings in tests.

For each row it applies the settings' processors, renders the settings' ``prompts`` (if any), calls the
LLM pipeline and records the reply. Plugin authors use it to run their datasource, sink, client or
middleware end to end without depending on an orchestrator distribution. Registered by
:func:`elspeth_testing.build_registry` unless ``testing=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from elspeth import (
    LLMRequest,
    OrchestrationContext,
    PromptTemplate,
    Record,
    Registrar,
    Row,
    RowFailed,
    RowRunner,
    RunResult,
    Table,
    check_template,
    hookimpl,
)

__all__ = ["RowsOrchestrator", "register_orchestrators"]


class RowsOrchestrator:
    """Renders the prompts for each row, calls the LLM and records its reply (a test orchestrator)."""

    name = "rows"
    uses_prompts = True

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

    async def work(self, row: Row, ctx: OrchestrationContext) -> Record:
        """One row: render the prompts, call the LLM, record its reply (no prompts: the row as it is)."""
        if self._user is None or ctx.llm is None:
            return Record(row.id, row.data)
        try:
            system = self._system.render(row.data) if self._system is not None else ""
            user = self._user.render(row.data)
        except Exception as exc:  # a row whose values break the template fails on its own
            raise RowFailed("render", str(exc)) from None
        request = LLMRequest(system=system, user=user, metadata={"run_id": ctx.run_id, "row_id": row.id, "attempt": 1})
        try:
            response = await ctx.llm.call(request)
        except Exception as exc:  # any client or middleware failure is this row's failure
            raise RowFailed.from_call(exc) from None
        metrics = {
            **response.metrics,
            "latency_s": response.latency_s,
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
        }
        return Record(row.id, row.data, {self.options.output: response.content}, metrics)

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Process every row with ``ctx.concurrency`` in flight; failed rows become failures."""
        runner = RowRunner(ctx, self.work, description="rows")
        counts = await runner.run(table.rows)
        return RunResult(runner.records, runner.failures, {}, counts.metadata(ctx, self.name))


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``rows`` orchestrator."""
    register(RowsOrchestrator)
