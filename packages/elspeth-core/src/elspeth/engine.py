"""From a settings file to a finished run: resolve every plugin, check everything, run, write sinks.

Everything that can be checked is checked in :func:`prepare`, before the first row: plugin names,
their options, templates against the datasource's columns, and whatever the orchestrator checks.
``elspeth validate`` stops there.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elspeth._sync import invoke
from elspeth.config._yaml import Checker, Loc
from elspeth.config.settings import LoadedSettings
from elspeth.datatypes import RunResult, Table
from elspeth.errors import ConfigError, ElspethError
from elspeth.execution import execute
from elspeth.ledger import Ledger
from elspeth.orchestration.context import NullProgress, OrchestrationContext, PluginContext, Progress
from elspeth.orchestration.fields import check_preprocessing, ignored_settings
from elspeth.orchestration.local import LocalExecutor
from elspeth.orchestration.runner import Cancel
from elspeth.outputs import check_files
from elspeth.planning import (
    Plan,
    build_all,
    check_clearances,
    check_services,
    data_level,
    llm_factory,
    parts,
    resolve_all,
    run_llm,
)
from elspeth.references import check_ahead
from elspeth.registry import Registry, Resolved
from elspeth.resume import EarlierAttempts, RunOptions, open_store, prior_rows, restore_spending
from elspeth.security import SecurityLevel
from elspeth.writing import order_sinks

__all__ = ["PreparedRun", "execute", "new_run_id", "prepare", "run_settings"]

log = logging.getLogger("elspeth")


BATCH_ROWS = 10_000  # rows in flight at once with `batch_api` on (more make one batch larger, and use memory)


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class PreparedRun:
    """A run whose every plugin is resolved and built and whose settings passed every check."""

    loaded: LoadedSettings
    registry: Registry
    context: OrchestrationContext
    orchestrator: Any
    orchestrator_name: str
    table: Table
    sinks: list[tuple[Resolved, Any]] = field(default_factory=list)
    parts: list[tuple[str, str, Any]] = field(default_factory=list)
    """(domain, name, plugin) of the middleware, controls, processors and utilities, for open/close/summary."""
    earlier: EarlierAttempts | None = None
    """With ``--resume``: what the run's earlier attempts spent (the cost tracker is already seeded with it)."""
    warnings: list[str] = field(default_factory=list)
    """Settings that do nothing for this run (``prompts`` an orchestrator ignores), each with its line."""
    executor: Any = None
    """Where the orchestrator runs (``executor:``; None runs it here, as ``local`` does)."""
    observers: list[tuple[str, Any]] = field(default_factory=list)
    """(name, observer) of the settings' ``observers``, registered for the run (:mod:`elspeth.observing`)."""
    options: RunOptions | None = None
    """The CLI's flags the run was prepared with (``--max-seconds`` is enforced while it runs)."""

    def __post_init__(self) -> None:
        """Order the sinks by their ``after`` (a cycle is a ConfigError before any row); no executor means ``local``."""
        self.sinks = order_sinks(self.sinks)
        if self.executor is None:  # no `executor:` in the settings runs the orchestrator here, as `local` does
            self.executor = LocalExecutor(LocalExecutor.Options())


async def prepare(
    loaded: LoadedSettings,
    registry: Registry,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
    options: RunOptions | None = None,
    table: Table | None = None,
) -> PreparedRun:
    """Resolve, build and check everything the settings name, without processing any row.

    Args:
        loaded: the settings.
        registry: the installed plugins.
        run_id: the new run's id (default: a fresh one; with ``options.resume``, the resumed run's).
        progress: where to report rows as they finish.
        options: resume, cache and recording choices (the CLI's flags).
        table: the rows to run instead of the datasource's (a cluster worker's partition); the
            datasource is built and checked, not loaded.

    Raises:
        ConfigError: every problem found, each naming its place in the settings file.
        StoreError: the run store cannot be used, or the run to resume is not in it.

    """
    settings = loaded.settings
    checker = loaded.checker()
    plan = resolve_all(loaded, registry, checker)
    if checker.problems:  # stopping here: report what later checks would find too, in this one pass
        check_ahead(registry, plan.single["orchestrator"], settings.prompts, checker)
    checker.raise_if_any()
    level, source = data_level(loaded, plan.single["datasource"])
    check_clearances(loaded, plan, level, source, checker)
    checker.raise_if_any()
    build_all(plan, checker)
    checker.raise_if_any()
    options = options or RunOptions()
    run_id = options.resume or run_id or new_run_id()
    ctx = _context(plan, loaded, registry, (level, source), run_id, options, checker, progress or NullProgress())
    return await _check_and_open(plan, loaded, ctx, options, checker, table)


def _context(
    plan: Plan,
    loaded: LoadedSettings,
    registry: Registry,
    data: tuple[SecurityLevel, str],
    run_id: str,
    options: RunOptions,
    checker: Checker,
    progress: Progress,
) -> OrchestrationContext:
    """The run's context: its LLM pipeline (checked for clearance and endpoints), ledger, cancel and plugins."""
    settings, (level, source) = loaded.settings, data
    cancel, ledger = Cancel(), Ledger()
    factory = llm_factory(plan, loaded, data, cancel, options, ledger)
    factory.run_tag = run_id
    llm = run_llm(plan, loaded, factory, checker)
    check_services(plan, settings, checker)
    checker.raise_if_any()
    return OrchestrationContext(
        run_id=run_id,
        name=settings.name,
        registry=registry,
        loaded=loaded,
        llm=llm,
        processors=plan.processors(),
        utilities=plan.built_lists["utilities"],
        # a batch run waits on whole batches: rows in flight are what one batch gathers
        concurrency=max(settings.concurrency, BATCH_ROWS) if settings.batch_api.enabled else settings.concurrency,
        plugin_context=PluginContext(
            run_id, settings.name, loaded.base_dir, loaded.output_dir, security_level=str(level)
        ),
        progress=progress,
        cancel=cancel,
        used=[r.info for r in plan.resolved()],
        security_level=level,
        security_source=source,
        ledger=ledger,
        llm_factory=factory,
    )


async def _check_and_open(
    plan: Plan,
    loaded: LoadedSettings,
    ctx: OrchestrationContext,
    options: RunOptions,
    checker: Checker,
    given: Table | None = None,
) -> PreparedRun:
    """Open the datasource, run the orchestrator's check and, once everything passed, the run store."""
    built = plan.built
    table = given
    if table is None:
        source, partitioned = built["datasource"], getattr(built["executor"], "reads_partitions", False)
        table = await _open_table(source, plan.single["datasource"], ctx.plugin_context, checker, partitioned)
    if table is not None:  # a processor's `columns` or a retrieval query naming a field no row has
        check_preprocessing(list(table.columns), ctx.processors, ctx.utilities, checker)
    pairs = [(plan.single[key], plan.built[key]) for key in plan.single]
    pairs += [pair for key in plan.lists for pair in zip(plan.lists[key], plan.built_lists[key], strict=True)]
    check_files(loaded, ctx.plugin_context, options, checker, pairs)  # no output may replace an input, nor a device
    checker.raise_if_any()
    orchestrator = plan.single["orchestrator"]
    assert table is not None
    assert orchestrator is not None
    declared = [
        (r, obj) for r, obj in zip(plan.lists["sinks"], plan.built_lists["sinks"], strict=True) if r is not None
    ]
    sinks = order_sinks(declared)  # sinks whose `after` form a cycle: a ConfigError naming them
    ctx.sinks = [(r.info.name, obj) for r, obj in sinks]  # a streaming orchestrator emits to them
    ctx.max_messages = options.max_messages
    # `def` or `async def`, like every plugin method: a sync check runs in a worker thread
    await invoke(built["orchestrator"].check, list(table.columns), ctx)
    # the store opens only once every check has passed: a bad settings file leaves nothing behind
    earlier = _open_store(loaded, ctx, options, built["cost_tracker"])
    warnings = ignored_settings(loaded, orchestrator)
    for warning in warnings:
        log.warning("%s", warning)
    return PreparedRun(
        loaded,
        ctx.registry,
        ctx,
        built["orchestrator"],
        orchestrator.info.name,
        table,
        sinks,
        parts(plan),
        earlier,
        warnings,
        built["executor"],
        observers=[
            (r.info.name, o)
            for r, o in zip(plan.lists["observers"], plan.built_lists["observers"], strict=True)
            if r is not None and o is not None
        ],
        options=options,
    )


def _open_store(
    loaded: LoadedSettings, ctx: OrchestrationContext, options: RunOptions, cost_tracker: Any
) -> EarlierAttempts | None:
    """Open the run store into ``ctx``; on resume read its prior rows and seed the ledger with what was spent."""
    ctx.store = open_store(loaded, options)
    if ctx.store is None:
        return None
    if ctx.llm_factory is not None and loaded.settings.batch_api.enabled:  # a killed batch run resumes by polling
        ctx.llm_factory.use_journal(ctx.store.batch_journal(ctx.run_id))
    try:
        ctx.prior = prior_rows(ctx.store, loaded, options)
        return restore_spending(ctx.store, options, cost_tracker, ctx.ledger)  # seeds the ledger
    except BaseException:
        ctx.store.close()
        raise


async def _open_table(
    source: Any, resolved: Resolved | None, ctx: PluginContext, checker: Checker, partitioned: bool = False
) -> Table | None:
    """The datasource's table; for an executor that reads partitions, its partitions if it offers them."""
    assert resolved is not None
    loc: Loc = ("datasource",)
    try:
        opener = getattr(source, "open_partitioned", None) if partitioned else None
        table: Table | None = await invoke(opener, ctx) if opener is not None else None
        if table is None:  # no partitions (or not with these options): read here, shipped in chunks
            table = await invoke(source.load, ctx)
        return table
    except ElspethError as exc:
        checker.add(loc, f"datasource '{resolved.info.name}': {exc}")
    except (OSError, ValueError) as exc:  # ValueError: a path the operating system refuses (a NUL byte)
        checker.add(loc, f"datasource '{resolved.info.name}' cannot read its input: {exc}")
    return None


def run_settings(loaded: LoadedSettings, registry: Registry, *, progress: Progress | None = None) -> RunResult:
    """Prepare and execute in one call (for scripts and tests)."""

    async def main() -> RunResult:
        return await execute(await prepare(loaded, registry, progress=progress))

    return asyncio.run(main())


__all__ += ["ConfigError"]
