"""Turning the options into runnable experiments, checking every template and sub-plugin on the way."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elspeth import Checker, LLMPipeline, OrchestrationContext, PluginRef, PromptTemplate, Resolved, check_template
from elspeth_experiment.epochs import FLAG_REDUCERS, EpochPlan
from elspeth_experiment.gates import check_gates
from elspeth_experiment.options import SUB_PLUGIN_LISTS, Criterion, ExperimentOptions, ExperimentSpec
from elspeth_experiment.protocols import SetupContext

__all__ = ["CompiledExperiment", "CompiledSuite", "compile_suite"]

DEFAULT_CRITERION = "default"
Loc = tuple[str | int, ...]


@dataclass
class CompiledExperiment:
    """An experiment ready to run: its client, templates and sub-plugin instances."""

    name: str
    baseline: bool
    description: str
    llm: LLMPipeline
    system: PromptTemplate
    users: dict[str, PromptTemplate]
    row_plugins: list[tuple[str, Any]] = field(default_factory=list)
    aggregators: list[tuple[str, Any]] = field(default_factory=list)
    validators: list[tuple[str, Any]] = field(default_factory=list)
    early_stops: list[tuple[str, Any]] = field(default_factory=list)
    validation_retries: int = 0
    plan: EpochPlan = field(default_factory=EpochPlan)


@dataclass
class CompiledSuite:
    """The experiments in run order (baseline first) and the comparison plugins."""

    experiments: list[CompiledExperiment]
    comparisons: list[tuple[str, Any]]

    @property
    def baseline(self) -> CompiledExperiment:
        """The baseline experiment."""
        return self.experiments[0]


def _build_list(
    ctx: OrchestrationContext,
    domain: str,
    refs: Sequence[PluginRef],
    loc: Loc,
    checker: Checker,
    columns: Sequence[str],
) -> list[tuple[str, Any]]:
    def set_up(plugin: Any, resolved: Resolved, where: Loc) -> bool:
        setup = getattr(plugin, "setup", None)
        if inspect.iscoroutinefunction(setup):
            # setup runs inside the orchestrator's check, which compiles the suite synchronously:
            # a coroutine would never be awaited, and the plugin would run half set up
            checker.add(
                where,
                f"{domain} '{resolved.info.name}' ({resolved.info.distribution}) defines `async def setup`, but setup "
                "runs while the settings are checked and must be a plain `def`; move network work to its run "
                "methods, which may be async",
            )
            return False
        if callable(setup):
            setup(SetupContext(ctx, columns, where, checker))
        return True

    return ctx.build_plugins(domain, refs, loc, checker, prepare=set_up)


def _pick(spec_value: Any, default: Any, spec_loc: Loc, default_loc: Loc) -> tuple[Any, Loc]:
    return (spec_value, spec_loc) if spec_value is not None else (default, default_loc)


def _user_templates(
    spec: ExperimentSpec,
    loc: Loc,
    criteria: Sequence[Criterion],
    criteria_loc: Loc,
    user: tuple[str | None, Loc],
    columns: Sequence[str],
    checker: Checker,
) -> dict[str, PromptTemplate]:
    """Each criterion's user prompt: its own, else the experiment's or the settings' ``prompts.user``."""
    user_src, user_loc = user
    extra = ("criterion",)
    users: dict[str, PromptTemplate] = {}
    for i, criterion in enumerate(criteria):
        if criterion.user is not None:
            src, src_loc = criterion.user, (*criteria_loc, i, "user")
        elif user_src is not None:
            src, src_loc = user_src, user_loc
        else:
            checker.add(
                loc if spec.name != DEFAULT_CRITERION else ("prompts",),
                "no user prompt: set `prompts.user` in the settings or in this experiment",
            )
            continue
        template = check_template(src, src_loc, checker, columns, extra)
        if template is not None:
            users[criterion.name] = template
    return users


def _compile_one(
    spec: ExperimentSpec,
    loc: Loc,
    options: ExperimentOptions,
    columns: Sequence[str],
    ctx: OrchestrationContext,
    checker: Checker,
) -> CompiledExperiment | None:
    base = ctx.options_loc
    prompts = ctx.loaded.settings.prompts
    over = spec.prompts
    problems_before = len(checker.problems)

    def template_source(key: str) -> tuple[str | None, Loc]:
        value = getattr(over, key) if over is not None else None
        if value is not None:
            return value, (*loc, "prompts", key)
        return (getattr(prompts, key) if prompts is not None else None), ("prompts", key)

    extra = ("criterion",)
    system_src, system_loc = template_source("system")
    columns = ctx.available_fields(columns)
    system = check_template(system_src or "", system_loc, checker, columns, extra)
    user_src, user_loc = template_source("user")
    criteria: list[Criterion]
    criteria, criteria_loc = _pick(spec.criteria, options.criteria, (*loc, "criteria"), (*base, "criteria"))
    users = _user_templates(
        spec, loc, criteria or [Criterion(name=DEFAULT_CRITERION)], criteria_loc, (user_src, user_loc), columns, checker
    )

    if spec.llm is not None or spec.llm_options:
        llm_loc = (*loc, "llm") if spec.llm is not None else (*loc, "llm_options")
        llm = ctx.build_llm(spec.llm, spec.llm_options, llm_loc, checker, options_loc=(*loc, "llm_options"))
    else:
        llm = ctx.llm
        if llm is None:
            checker.add((), "the experiment orchestrator calls an LLM: set `llm` in the settings")

    lists = {}
    for key, domain in SUB_PLUGIN_LISTS:
        refs, refs_loc = _pick(getattr(spec, key), getattr(options, key), (*loc, key), (*base, key))
        lists[key] = _build_list(ctx, domain, refs, refs_loc, checker, columns)

    plan = _epoch_plan(spec, loc, options, base, llm, checker)
    if len(checker.problems) > problems_before or system is None or llm is None or plan is None:
        return None
    return CompiledExperiment(
        name=spec.name,
        baseline=spec.baseline,
        description=spec.description,
        llm=llm,
        system=system,
        users=users,
        row_plugins=lists["row_plugins"],
        aggregators=lists["aggregators"],
        validators=lists["validators"],
        early_stops=lists["early_stop"],
        validation_retries=options.validation_retries,
        plan=plan,
    )


def _epoch_plan(
    spec: ExperimentSpec, loc: Loc, options: ExperimentOptions, base: Loc, llm: Any, checker: Checker
) -> EpochPlan | None:
    """The experiment's epochs, reducer, seeds and temperatures; None (with the problem added) when they disagree."""
    epochs, epochs_loc = _pick(spec.epochs, options.epochs, (*loc, "epochs"), (*base, "epochs"))
    reducer = spec.reducer if spec.reducer is not None else options.reducer
    k, k_loc = _pick(spec.reducer_k, options.reducer_k, (*loc, "reducer_k"), (*base, "reducer_k"))
    temps, temps_loc = _pick(
        spec.epoch_temperatures, options.epoch_temperatures, (*loc, "epoch_temperatures"), (*base, "epoch_temperatures")
    )
    ok = True
    if reducer in FLAG_REDUCERS and k > epochs:
        checker.add(k_loc, f"reducer {reducer} needs k <= epochs: k is {k}, {_dotted(epochs_loc)} is {epochs}")
        ok = False
    if temps is not None and len(temps) != epochs:
        checker.add(
            temps_loc, f"{len(temps)} temperatures for {epochs} epochs: give one per epoch (null: the client's)"
        )
        ok = False
    if not ok:
        return None
    takes_seed = epochs > 1 and bool(getattr(getattr(llm, "client", None), "supports_seed", False))
    seeds = tuple(options.epoch_seed + e if takes_seed else None for e in range(epochs))
    return EpochPlan(epochs, reducer, k, seeds, tuple(temps) if temps is not None else (None,) * epochs)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _check_names(options: ExperimentOptions, base: Loc, checker: Checker) -> None:
    """One baseline at most, and no name used twice; each problem at the repeated entry's own line."""
    seen: dict[str, int] = {}
    baseline: int | None = None
    for i, spec in enumerate(options.experiments):
        if spec.name in seen:
            checker.add(
                (*base, "experiments", i, "name"),
                f"experiment name '{spec.name}' is already used by experiments[{seen[spec.name]}]",
            )
        seen.setdefault(spec.name, i)
        if spec.baseline:
            if baseline is not None:
                checker.add(
                    (*base, "experiments", i, "baseline"),
                    f"only one experiment may be the baseline; experiments[{baseline}] "
                    f"('{options.experiments[baseline].name}') already is",
                )
            else:
                baseline = i
    criteria: dict[str, int] = {}
    for i, criterion in enumerate(options.criteria):
        if criterion.name in criteria:
            checker.add(
                (*base, "criteria", i, "name"),
                f"criterion '{criterion.name}' is already criteria[{criteria[criterion.name]}]",
            )
        criteria.setdefault(criterion.name, i)


def compile_suite(options: ExperimentOptions, columns: Sequence[str], ctx: OrchestrationContext) -> CompiledSuite:
    """Check and build every experiment; raises :class:`elspeth.ConfigError` naming every problem."""
    checker = ctx.checker()
    base = ctx.options_loc
    _check_names(options, base, checker)
    specs: list[tuple[ExperimentSpec, Loc]]
    if options.experiments:
        specs = [(spec, (*base, "experiments", i)) for i, spec in enumerate(options.experiments)]
        baseline_at = next((i for i, (s, _) in enumerate(specs) if s.baseline), 0)
        specs.insert(0, specs.pop(baseline_at))
    else:
        specs = [(ExperimentSpec(name=DEFAULT_CRITERION, baseline=True), base)]
    compiled = []
    for index, (spec, loc) in enumerate(specs):
        experiment = _compile_one(spec, loc, options, columns, ctx, checker)
        if experiment is not None:
            experiment.baseline = index == 0
            compiled.append(experiment)
    if options.group_by is not None and options.group_by not in ctx.available_fields(columns):
        checker.add(
            (*base, "group_by"),
            f"group_by column '{options.group_by}' is not a column of the data (columns: {', '.join(columns)})",
        )
    comparisons = _build_list(ctx, "baseline_comparison", options.comparisons, (*base, "comparisons"), checker, columns)
    if compiled and len(compiled) == len(specs):
        check_gates(
            options.gates,
            (*base, "gates"),
            checker,
            experiments={e.name: [name for name, _ in e.aggregators] for e in compiled},
            baseline=compiled[0].name,
            comparisons=[ref.plugin for ref in options.comparisons],
        )
    checker.raise_if_any()
    return CompiledSuite(compiled, comparisons)
