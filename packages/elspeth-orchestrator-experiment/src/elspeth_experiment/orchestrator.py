"""The ``experiment`` orchestrator: a baseline and its variants over the same rows, then comparisons."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from elspeth import OrchestrationContext, PluginReference, Row, RunMetadata, RunResult, Table, invoke, iterate_rows
from elspeth_experiment.options import ExperimentOptions, plugin_references
from elspeth_experiment.protocols import ExperimentResult

if TYPE_CHECKING:
    from elspeth import PlannedCall
    from elspeth_experiment.compile import CompiledSuite

__all__ = ["ExperimentOrchestrator"]

log = logging.getLogger("elspeth.experiment")


class ExperimentOrchestrator:
    """Runs a baseline and variants over the same rows and compares each variant with the baseline."""

    name = "experiment"
    Options = ExperimentOptions
    uses_prompts = True

    def __init__(self, options: ExperimentOptions) -> None:
        self.options = options
        self._suite: CompiledSuite | None = None

    @staticmethod
    def plugin_references(options: ExperimentOptions) -> list[PluginReference]:
        """Every plugin the options name, so that a settings file's unknown names are all reported in one pass."""
        return plugin_references(options)

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> None:
        """Compile every experiment: templates against ``columns``, clients and sub-plugins by name and options."""
        # compiling needs the template engine: imported here so that listing plugins stays fast
        from elspeth_experiment.compile import compile_suite

        self._suite = compile_suite(self.options, columns, ctx)

    async def run(self, table: Table, ctx: OrchestrationContext) -> RunResult:
        """Run every experiment (baseline first) over the same rows, then the comparisons."""
        if self._suite is None:
            self.check(table.columns, ctx)
        assert self._suite is not None
        rows: list[Row] = [row async for row in iterate_rows(table.rows)]
        ctx.expect_rows(len(rows) * len(self._suite.experiments))
        results: list[ExperimentResult] = []
        for experiment in self._suite.experiments:
            if ctx.cancel.is_set():
                results.append(ExperimentResult(experiment.name, experiment.baseline, rows_not_run=len(rows)))
                continue
            from elspeth_experiment.runner import run_experiment

            baseline = results[0] if results and not experiment.baseline else None
            results.append(await run_experiment(experiment, rows, ctx, baseline))
        comparisons = await self._compare(results)
        result = self._result(results, comparisons, rows, ctx)
        if self.options.group_by is not None:
            from elspeth_experiment.grouping import breakdown

            result.aggregates["groups"] = await breakdown(
                self._suite, results, rows, self.options.group_by, self.options.group_min_rows, self._compare
            )
        if self.options.gates:
            from elspeth_experiment.gates import evaluate_gates

            where = ".".join(str(part) for part in (*ctx.options_loc, "gates"))
            result.metadata.gates = evaluate_gates(self.options.gates, results, comparisons, where)
            result.aggregates["gates"] = [gate.to_dict() for gate in result.metadata.gates]
        return result

    def planned_calls(self, row: Row, ctx: OrchestrationContext) -> list[PlannedCall]:
        """For ``elspeth estimate``: each experiment's call per criterion and epoch for this row (if it renders)."""
        from elspeth import LLMRequest, PlannedCall, TemplateError

        assert self._suite is not None, "check() compiles the suite first"
        calls = []
        for experiment in self._suite.experiments:
            for criterion, template in experiment.users.items():
                values = {**row.data, "criterion": criterion}  # as the runner renders them
                try:
                    system, user = experiment.system.render(values), template.render(values)
                except TemplateError:
                    continue
                plan = experiment.plan
                for epoch in [0] if plan.epochs == 1 else range(1, plan.epochs + 1):  # as the runner sends them
                    params, metadata = (plan.params(epoch), {"epoch": epoch}) if epoch else ({}, {})
                    request = LLMRequest(system, user, params=params, metadata=metadata)
                    calls.append(PlannedCall(request, experiment.llm, experiment.name))
        return calls

    async def _compare(self, results: list[ExperimentResult]) -> dict[str, dict[str, Any]]:
        """Run each comparison plugin: ``compare_all`` once over every variant, else ``compare`` per variant."""
        assert self._suite is not None
        baseline, variants = results[0], results[1:]
        out: dict[str, dict[str, Any]] = {variant.name: {} for variant in variants}
        if not variants:
            return out
        for name, plugin in self._suite.comparisons:
            if hasattr(plugin, "compare_all"):
                try:
                    per_variant = await invoke(plugin.compare_all, baseline, variants)
                    for variant in variants:
                        out[variant.name][name] = dict(per_variant.get(variant.name, {}))
                except Exception as exc:  # one comparison's bug must not lose the run: report it in place
                    log.warning("comparison %s failed: %s", name, exc)
                    for variant in variants:
                        out[variant.name][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            for variant in variants:
                try:
                    out[variant.name][name] = dict(await invoke(plugin.compare, baseline, variant))
                except Exception as exc:  # one comparison's bug must not lose the run: report it in place
                    log.warning("comparison %s failed for %s: %s", name, variant.name, exc)
                    out[variant.name][name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    def _result(
        self,
        results: list[ExperimentResult],
        comparisons: dict[str, dict[str, Any]],
        rows: list[Row],
        ctx: OrchestrationContext,
    ) -> RunResult:
        records = [r for result in results for r in result.records]
        failures = [f for result in results for f in result.failures]
        aggregates: dict[str, Any] = {
            "baseline": results[0].name,
            "experiments": {
                r.name: {
                    "baseline": r.baseline,
                    "rows": len(r.records) + len(r.failures),
                    "succeeded": len(r.records),
                    "failed": len(r.failures),
                    "not_run": r.rows_not_run,
                    "early_stop": r.early_stop,
                    "epochs": r.epochs,
                    "aggregates": r.aggregates,
                }
                for r in results
            },
            "comparisons": comparisons,
        }
        metadata = RunMetadata(
            run_id=ctx.run_id,
            name=ctx.name,
            orchestrator=self.name,
            rows=len(rows),
            succeeded=len(records),
            failed=len(failures),
            early_stop={r.name: r.early_stop for r in results if r.early_stop},
            extra={"experiments": [r.name for r in results]},
        )
        return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)

    def summary(self, result: RunResult) -> list[str]:
        """A few lines for the terminal: each experiment's rows, failures and headline score."""
        lines = []
        for name, exp in result.aggregates.get("experiments", {}).items():
            line = f"{name}{' (baseline)' if exp['baseline'] else ''}: {exp['succeeded']} ok, {exp['failed']} failed"
            if exp["not_run"]:
                line += f", {exp['not_run']} not run"
            stats = exp["aggregates"].get("score_stats", {}).get("overall")
            if stats and stats.get("mean") is not None:
                line += f"; mean score {stats['mean']:.3f}"
                if stats.get("pass_rate") is not None:
                    line += f", pass rate {stats['pass_rate']:.0%}"
            if exp["early_stop"]:
                line += f"; stopped early ({exp['early_stop'].get('plugin')})"
            if exp.get("epochs", 1) > 1:
                line += f"; {exp['epochs']} epochs a row"
            lines.append(line)
        groups = result.aggregates.get("groups")
        if groups:
            from elspeth_experiment.grouping_summary import group_lines

            lines += group_lines(groups)
        return lines
