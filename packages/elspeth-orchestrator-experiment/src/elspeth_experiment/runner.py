"""Running one experiment over the rows: render, call, validate, score, check early stop.

A row's ``latency_s``, ``prompt_tokens``, ``completion_tokens`` and ``cost`` add up every LLM call made
for it: each criterion's calls (rejected ones included, they were paid for) and the calls validators
made to judge them (``llm_guard``), which are also broken out under ``validator``. A failed row carries
the same figures in ``Failure.metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from elspeth import (
    Cancel,
    Failure,
    LLMRequest,
    LLMResponse,
    OrchestrationContext,
    Record,
    Row,
    RowFailed,
    RowRunner,
    TemplateError,
    ValidationFailed,
    invoke,
)
from elspeth_experiment.compile import DEFAULT_CRITERION, CompiledExperiment
from elspeth_experiment.epochs import epoch_summary, reduce_epochs
from elspeth_experiment.protocols import ExperimentResult, ValidationFailedWithCalls

__all__ = ["aggregate", "run_experiment"]

log = logging.getLogger("elspeth.experiment")


def _made_calls(value: Any) -> list[LLMResponse]:
    """The LLM responses a validator handed back (its own calls), ignoring anything else it returned."""
    if isinstance(value, LLMResponse):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, LLMResponse)]
    return []


def _usage(calls: Sequence[LLMResponse], judged: Sequence[LLMResponse]) -> dict[str, Any]:
    """Latency, tokens and cost of a row's calls (``calls``: to the experiment's LLM; ``judged``: validators')."""

    def totals(responses: Sequence[LLMResponse]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "latency_s": round(sum(r.latency_s for r in responses), 6),
            "prompt_tokens": sum(r.usage.prompt_tokens for r in responses),
            "completion_tokens": sum(r.usage.completion_tokens for r in responses),
        }
        costs = [r.metrics["cost"] for r in responses if r.metrics.get("cost") is not None]
        if costs:
            out["cost"] = sum(costs)
        return out

    every = [*calls, *judged]
    metrics = totals(every)
    if every and all(r.cached for r in every):
        metrics["cached"] = True  # answered from the response cache: no call was made, nothing paid
    if judged:
        metrics["validator"] = {"calls": len(judged), **totals(judged)}
    return metrics


class _ExperimentRun:
    def __init__(self, experiment: CompiledExperiment, ctx: OrchestrationContext) -> None:
        self.experiment = experiment
        self.ctx = ctx
        self.cancel = Cancel(parent=ctx.cancel)
        self.early_stop: dict[str, Any] | None = None

    def _render(self, row: Row, criterion: str) -> tuple[str, str]:
        values = {**row.data, "criterion": criterion}
        try:
            return self.experiment.system.render(values), self.experiment.users[criterion].render(values)
        except TemplateError as exc:
            raise RowFailed("render", str(exc)) from None

    async def _validate(
        self, response: LLMResponse, row: Row, judged: list[LLMResponse]
    ) -> tuple[str, str, bool] | None:
        """The first validator's objection as (stage, reason, retryable), or None when all accept.

        The calls a validator made to decide (returned, or carried by its ``ValidationFailedWithCalls``)
        are appended to ``judged`` so the row pays for them.
        """
        observation = self.ctx.observation
        for name, validator in self.experiment.validators:
            try:
                if observation is None:
                    made = await invoke(validator.validate, response, row)
                else:
                    with observation.stage(f"validation:{name}", row.id):  # a rejection: failed, ValidationFailed
                        made = await invoke(validator.validate, response, row)
            except ValidationFailed as exc:
                if isinstance(exc, ValidationFailedWithCalls):
                    judged.extend(_made_calls(exc.calls))
                return f"validation:{name}", exc.reason, True
            except Exception as exc:  # a validator's own bug fails the row, and asking again will not help
                return f"validation:{name}", f"{type(exc).__name__}: {exc}", False
            judged.extend(_made_calls(made))
        return None

    async def _ask(
        self, row: Row, criterion: str, calls: list[LLMResponse], judged: list[LLMResponse], epoch: int = 0
    ) -> LLMResponse:
        """One criterion's answer, asking again (up to ``validation_retries``) while a validator rejects it.

        A rejected answer is evicted from the response cache, and a re-ask skips the cache: otherwise
        the re-ask would be answered with the very reply just rejected, in this run and every later one.
        """
        system, user = self._render(row, criterion)
        attempts: list[dict[str, Any]] = []
        tries = 1 + self.experiment.validation_retries
        for attempt in range(1, tries + 1):
            metadata = {
                "run_id": self.ctx.run_id,
                "row_id": row.id,
                "experiment": self.experiment.name,
                "criterion": criterion,
                "validation_attempt": attempt,  # "attempt" belongs to the pipeline's transport retries
            }
            if attempt > 1:
                metadata["refresh_cache"] = True
            params = {}
            if epoch:  # a repeated sample: keyed apart in the cache, with its own seed and temperature
                metadata["epoch"] = epoch
                params = self.experiment.plan.params(epoch)
            request = LLMRequest(system=system, user=user, params=params, metadata=metadata)
            try:
                response = await self.experiment.llm.call(request)
            except Exception as exc:  # any client or middleware failure becomes this row's failure
                where: dict[str, Any] = {"epoch": epoch} if epoch else {}
                failed = RowFailed.from_call(exc, "llm", validation_attempt=attempt, criterion=criterion, **where)
                raise RowFailed("llm", failed.error, None, [*attempts, *failed.attempts]) from None
            calls.append(response)
            objection = await self._validate(response, row, judged)
            if objection is None:
                return response
            discard = getattr(self.experiment.llm, "discard", None)  # a pipeline stand-in may not cache
            if discard is not None:
                await discard(request)
            stage, reason, retryable = objection
            attempts.append(
                {
                    "attempt": attempt,
                    "validation_attempt": attempt,
                    "criterion": criterion,
                    "stage": stage,
                    "error": reason,
                    "response": response.content,
                    **({"epoch": epoch} if epoch else {}),
                }
            )
            if not retryable:
                break
        if epoch:
            reason = f"epoch {epoch}: {reason}"
        output = {self._output_key(criterion): response.content}
        raise RowFailed(stage, reason, output, attempts)

    def _output_key(self, criterion: str) -> str:
        return "response" if criterion == DEFAULT_CRITERION else f"response.{criterion}"

    async def work(self, row: Row, ctx: OrchestrationContext) -> Record:
        """One row (as the processors left it): every criterion asked and validated, then the row plugins.

        With ``epochs: K`` (K > 1) that is done K times, one epoch after the other, and the epochs'
        scores reduced (:func:`elspeth_experiment.epochs.reduce_epochs`); the row is committed once all
        K are, and an epoch that fails fails the row (its reason says which epoch).
        """
        calls: list[LLMResponse] = []  # every call, rejected ones too: they took time and cost money
        judged: list[LLMResponse] = []  # the calls validators made to judge them (llm_guard)
        plan = self.experiment.plan
        epochs = [0] if plan.epochs == 1 else list(range(1, plan.epochs + 1))
        contents: dict[str, list[str]] = {}
        per_epoch: list[dict[str, Any]] = []
        try:
            for epoch in epochs:
                responses: dict[str, LLMResponse] = {}
                for criterion in self.experiment.users:
                    responses[criterion] = await self._ask(row, criterion, calls, judged, epoch)
                for criterion, response in responses.items():
                    contents.setdefault(self._output_key(criterion), []).append(response.content)
                per_epoch.append(await self._row_plugins(row, responses, contents, epoch))
        except RowFailed as exc:
            exc.metrics = _usage(calls, judged) if calls or judged else {}
            raise
        outputs: dict[str, Any] = {key: v[0] if plan.epochs == 1 else v for key, v in contents.items()}
        metrics = _usage(calls, judged)
        if self.experiment.validation_retries:
            metrics["validation_retries"] = len(calls) - len(self.experiment.users) * len(epochs)
        if plan.epochs == 1:
            metrics.update(per_epoch[0])
        else:
            metrics["epochs"] = plan.epochs
            others = [{k: v for k, v in m.items() if k not in ("scores", "score_flags")} for m in per_epoch]
            if any(others):
                metrics["epoch_metrics"] = others
            metrics.update(reduce_epochs(plan, per_epoch))
        return Record(row_id=row.id, inputs=row.data, outputs=outputs, metrics=metrics, group=self.experiment.name)

    async def _row_plugins(
        self, row: Row, responses: dict[str, LLMResponse], contents: dict[str, list[str]], epoch: int
    ) -> dict[str, Any]:
        """The row plugins' metrics for one epoch's responses; a plugin's failure is the row's, with it named."""
        metrics: dict[str, Any] = {}
        for name, plugin in self.experiment.row_plugins:
            try:
                metrics.update(await invoke(plugin.process_row, row, responses))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if not epoch else f"epoch {epoch}: {type(exc).__name__}: {exc}"
                outputs = {key: v[-1] for key, v in contents.items()}
                raise RowFailed(f"row_plugin:{name}", error, outputs) from None
        return metrics

    async def after(self, row: Row, item: Record | Failure) -> None:
        """After each finished or resumed row: a stop with running state (a mean, a failure rate) sees every row."""
        if isinstance(item, Record):
            await self._check_early_stop(row, record=item)
        else:
            await self._check_early_stop(row, failure=item)

    async def _check_early_stop(self, row: Row, record: Record | None = None, failure: Failure | None = None) -> None:
        if self.early_stop is not None:
            return
        for name, plugin in self.experiment.early_stops:
            method = plugin.check if record is not None else getattr(plugin, "check_failure", None)
            if method is None:
                continue
            try:
                reason = await invoke(method, record if record is not None else failure)
            except Exception as exc:  # stop rather than run on unwatched: the plugin was asked to guard the run
                reason = {"reason": f"early-stop plugin raised {type(exc).__name__}: {exc}"}
            if reason and self.early_stop is None:
                detail = dict(reason) if isinstance(reason, Mapping) else {"reason": str(reason)}
                self.early_stop = {"plugin": name, "row_id": row.id, **detail}
                self.cancel.set(f"early stop by {name}")
                log.info("experiment %s stopped early: %s", self.experiment.name, self.early_stop)
                return


async def run_experiment(
    experiment: CompiledExperiment,
    rows: Sequence[Row],
    ctx: OrchestrationContext,
    baseline: ExperimentResult | None = None,
) -> ExperimentResult:
    """Run ``experiment`` over ``rows`` with ``ctx.concurrency`` rows in flight, then aggregate.

    An early stop with ``begin(baseline)`` is first handed the finished baseline (None for the baseline
    itself), so that it can watch the difference from it (``sequential``).
    """
    for _, plugin in experiment.early_stops:
        begin = getattr(plugin, "begin", None)
        if begin is not None:
            await invoke(begin, baseline)
    state = _ExperimentRun(experiment, ctx)
    runner = RowRunner(
        ctx,
        state.work,
        group=experiment.name,
        cancel=state.cancel,
        description=f"experiment {experiment.name}",
        after=state.after,
        count_rows=False,  # the orchestrator expects every experiment's rows at once
    )
    counts = await runner.run(rows)
    records = runner.records
    result = ExperimentResult(
        name=experiment.name,
        baseline=experiment.baseline,
        records=records,
        failures=runner.failures,
        early_stop=state.early_stop,
        rows_not_run=len(rows) - counts.started,
    )
    if experiment.plan.epochs > 1:
        result.epochs = experiment.plan.epochs
        result.aggregates["epochs"] = epoch_summary(experiment.plan, [r.metrics for r in records])
    await aggregate(experiment, result)
    return result


async def aggregate(experiment: CompiledExperiment, result: ExperimentResult) -> None:
    """Run the experiment's aggregators over ``result`` (records, or whole), summaries into ``result.aggregates``."""
    records = result.records
    for name, aggregator in experiment.aggregators:
        key = name if name not in result.aggregates else f"{name}#{len(result.aggregates)}"
        # an aggregator that also weighs failures and the early stop takes the whole result
        whole = getattr(aggregator, "finalize_result", None)
        try:
            summary = await invoke(whole, result) if whole is not None else await invoke(aggregator.finalize, records)
            result.aggregates[key] = dict(summary)
        except Exception as exc:  # an aggregator's bug must not lose the rows: report it in place
            log.warning("aggregator %s failed: %s", name, exc)
            result.aggregates[key] = {"error": f"{type(exc).__name__}: {exc}"}
