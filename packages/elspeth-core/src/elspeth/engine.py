"""From a settings file to a finished run: resolve every plugin, check everything, run, write sinks.

Everything that can be checked is checked in :func:`prepare`, before the first row: plugin names,
their options, templates against the datasource's columns, and whatever the orchestrator checks.
``elspeth validate`` stops there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elspeth._gc import fewer_collections
from elspeth._hooks import call_observers
from elspeth._sync import call
from elspeth.config._yaml import Checker, Loc
from elspeth.config.settings import LoadedSettings, PluginRef
from elspeth.endpoints import check_endpoints
from elspeth.errors import ConfigError, ElspethError, RunFailed
from elspeth.ledger import Ledger
from elspeth.observing import observe_run
from elspeth.orchestration.context import NullProgress, OrchestrationContext, PluginContext, Progress
from elspeth.orchestration.fields import check_preprocessing, ignored_settings
from elspeth.orchestration.llm_factory import LLMFactory
from elspeth.orchestration.local import LocalExecutor
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.runner import Cancel
from elspeth.orchestration.subplugins import close_plugins
from elspeth.outcome import decide_outcome
from elspeth.outputs import check_files
from elspeth.protocols import ResponseCache
from elspeth.references import check_ahead
from elspeth.registry import Registry, Resolved
from elspeth.resume import (
    EarlierAttempts,
    RunOptions,
    add_earlier_attempts,
    open_store,
    prior_rows,
    restore_spending,
)
from elspeth.security import SecurityLevel, check_clearance, parse_level
from elspeth.store import RunStore, StoreError
from elspeth.types import RunResult, Table
from elspeth.writing import order_sinks, write_sinks

__all__ = ["PreparedRun", "execute", "new_run_id", "prepare", "run_settings"]

log = logging.getLogger("elspeth")


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


def _build(resolved: Resolved | None, checker: Checker) -> Any:
    if resolved is None:
        return None
    try:
        return resolved.build()
    except ElspethError as exc:
        checker.add(resolved.loc, f"{resolved.info.domain} '{resolved.info.name}' could not start: {exc}")
    except Exception as exc:  # a plugin's constructor may raise anything; name the plugin and the place
        checker.add(
            resolved.loc,
            f"{resolved.info.domain} '{resolved.info.name}' ({resolved.info.distribution}) could not start: "
            f"{type(exc).__name__}: {exc}",
        )
    return None


def _resolve_list(
    registry: Registry, domain: str, refs: list[PluginRef], key: str, checker: Checker
) -> list[Resolved | None]:
    return [registry.resolve(domain, ref, (key, i), checker) for i, ref in enumerate(refs)]


@dataclass
class _Plan:
    """Every plugin the settings name, resolved (``single`` by settings key) and then built."""

    single: dict[str, Resolved | None]
    lists: dict[str, list[Resolved | None]]
    built: dict[str, Any] = field(default_factory=dict)
    built_lists: dict[str, list[Any]] = field(default_factory=dict)

    def processors(self) -> list[tuple[str, Any]]:
        """(name, processor) of each built processor, in the settings' order."""
        pairs = zip(self.lists["processors"], self.built_lists["processors"], strict=True)
        return [(r.info.name, obj) for r, obj in pairs if r is not None]

    def resolved(self) -> list[Resolved]:
        """Every resolved plugin, for the metadata's plugin versions."""
        every = [*self.single.values(), *(r for refs in self.lists.values() for r in refs)]
        return [r for r in every if r is not None]


_SINGLE = {
    "orchestrator": "orchestrator",
    "datasource": "datasource",
    "llm": "llm_client",
    "rate_limiter": "rate_limiter",
    "cost_tracker": "cost_tracker",
    "executor": "executor",
}
_LISTS = {
    "middleware": "llm_middleware",
    "processors": "processor",
    "utilities": "utility",
    "sinks": "sink",
    "observers": "observer",
}


def _resolve_all(loaded: LoadedSettings, registry: Registry, checker: Checker) -> _Plan:
    settings = loaded.settings
    single: dict[str, Resolved | None] = {}
    for key, domain in _SINGLE.items():
        ref: PluginRef | None = getattr(settings, key)
        single[key] = registry.resolve(domain, ref, (key,), checker) if ref is not None else None
    lists = {key: _resolve_list(registry, dom, getattr(settings, key), key, checker) for key, dom in _LISTS.items()}
    return _Plan(single, lists)


def _build_all(plan: _Plan, checker: Checker) -> None:
    plan.built = {key: _build(r, checker) for key, r in plan.single.items()}
    plan.built_lists = {key: [_build(r, checker) for r in refs] for key, refs in plan.lists.items()}


def _run_cache(utilities: list[Any], options: RunOptions) -> ResponseCache | None:
    """The run's response cache: the first utility that is one, unless ``--no-cache``."""
    caches = [u for u in utilities if isinstance(u, ResponseCache)]
    return caches[0] if caches and options.use_cache else None


def _check_services(plan: _Plan, settings: Any, checker: Checker) -> None:
    """Every middleware and utility that declares endpoints is checked against ``allowed_endpoints``."""
    for key in ("middleware", "utilities"):
        for resolved, obj in zip(plan.lists[key], plan.built_lists[key], strict=True):
            if resolved is not None and obj is not None:
                label = f"{resolved.info.domain} '{resolved.info.name}'"
                check_endpoints(obj, label, settings.allowed_endpoints, resolved.loc, checker)


def _llm_factory(
    plan: _Plan,
    loaded: LoadedSettings,
    data: tuple[SecurityLevel, str],
    cancel: Cancel,
    options: RunOptions,
    ledger: Ledger,
) -> LLMFactory:
    """The factory of every LLM pipeline of the run: the run's middleware, controls and cache around a client."""
    return LLMFactory(
        loaded,
        data,
        cancel,
        middleware=plan.built_lists["middleware"],
        rate_limiter=plan.built["rate_limiter"],
        cost_tracker=plan.built["cost_tracker"],
        cache=_run_cache(plan.built_lists["utilities"], options),
        ledger=ledger,
    )


def _llm(plan: _Plan, loaded: LoadedSettings, factory: LLMFactory, checker: Checker) -> LLMPipeline | None:
    """The run's own pipeline, through the factory that builds every variant's too."""
    client, resolved = plan.built["llm"], plan.single["llm"]
    factory.run_client = client
    if client is None or resolved is None:
        return None
    return factory.checked(client, resolved.info.name, ("llm",), checker)


async def prepare(
    loaded: LoadedSettings,
    registry: Registry,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
    options: RunOptions | None = None,
) -> PreparedRun:
    """Resolve, build and check everything the settings name, without processing any row.

    Args:
        loaded: the settings.
        registry: the installed plugins.
        run_id: the new run's id (default: a fresh one; with ``options.resume``, the resumed run's).
        progress: where to report rows as they finish.
        options: resume, cache and recording choices (the CLI's flags).

    Raises:
        ConfigError: every problem found, each naming its place in the settings file.
        StoreError: the run store cannot be used, or the run to resume is not in it.

    """
    settings = loaded.settings
    checker = loaded.checker()
    plan = _resolve_all(loaded, registry, checker)
    if checker.problems:  # stopping here: report what later checks would find too, in this one pass
        check_ahead(registry, plan.single["orchestrator"], settings.prompts, checker)
    checker.raise_if_any()
    level, source = _data_level(loaded, plan.single["datasource"])
    _check_clearances(loaded, plan, level, source, checker)
    checker.raise_if_any()
    _build_all(plan, checker)
    checker.raise_if_any()
    options = options or RunOptions()
    run_id = options.resume or run_id or new_run_id()
    cancel = Cancel()
    ledger = Ledger()
    factory = _llm_factory(plan, loaded, (level, source), cancel, options, ledger)
    llm = _llm(plan, loaded, factory, checker)
    _check_services(plan, settings, checker)
    checker.raise_if_any()
    ctx = OrchestrationContext(
        run_id=run_id,
        name=settings.name,
        registry=registry,
        loaded=loaded,
        llm=llm,
        processors=plan.processors(),
        utilities=plan.built_lists["utilities"],
        concurrency=settings.concurrency,
        plugin_context=PluginContext(
            run_id, settings.name, loaded.base_dir, loaded.output_dir, security_level=str(level)
        ),
        progress=progress or NullProgress(),
        cancel=cancel,
        used=[r.info for r in plan.resolved()],
        security_level=level,
        security_source=source,
        ledger=ledger,
        llm_factory=factory,
    )
    return await _check_and_open(plan, loaded, ctx, options, checker)


async def _check_and_open(
    plan: _Plan, loaded: LoadedSettings, ctx: OrchestrationContext, options: RunOptions, checker: Checker
) -> PreparedRun:
    """Open the datasource, run the orchestrator's check and, once everything passed, the run store."""
    built = plan.built
    table = await _open_table(built["datasource"], plan.single["datasource"], ctx.plugin_context, checker)
    if table is not None:  # a processor's `columns` or a retrieval query naming a field no row has
        check_preprocessing(list(table.columns), ctx.processors, ctx.utilities, checker)
    pairs = [(plan.single[key], plan.built[key]) for key in plan.single]
    pairs += [pair for key in plan.lists for pair in zip(plan.lists[key], plan.built_lists[key], strict=True)]
    check_files(loaded, ctx.plugin_context, options, checker, pairs)  # no output may replace an input, nor a device
    checker.raise_if_any()
    orchestrator = plan.single["orchestrator"]
    assert table is not None
    assert orchestrator is not None
    sinks = [(r, obj) for r, obj in zip(plan.lists["sinks"], plan.built_lists["sinks"], strict=True) if r is not None]
    ctx.sinks = [(r.info.name, obj) for r, obj in order_sinks(sinks)]  # a streaming orchestrator emits to them
    ctx.max_messages = options.max_messages
    # `def` or `async def`, like every plugin method: a sync check runs in a worker thread
    await call(built["orchestrator"].check, list(table.columns), ctx)
    # the store opens only once every check has passed: a bad settings file leaves nothing behind
    ctx.store = open_store(loaded, options)
    earlier = None
    if ctx.store is not None:
        try:
            ctx.prior = prior_rows(ctx.store, loaded, options)
            earlier = restore_spending(ctx.store, options, built["cost_tracker"], ctx.ledger)  # seeds the ledger
        except BaseException:
            ctx.store.close()
            raise
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
        _parts(plan),
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


def _parts(plan: _Plan) -> list[tuple[str, str, Any]]:
    """(domain, name, plugin) of every part opened, summarised and closed around the run."""
    single, built, lists, objs = plan.single, plan.built, plan.lists, plan.built_lists
    pairs = [
        *zip(lists["middleware"], objs["middleware"], strict=True),
        (single["rate_limiter"], built["rate_limiter"]),
        (single["cost_tracker"], built["cost_tracker"]),
        *zip(lists["utilities"], objs["utilities"], strict=True),
        *zip(lists["processors"], objs["processors"], strict=True),
        # the datasource and the LLM client take part only in summary() and close()/aclose()
        (single["datasource"], built["datasource"]),
        (single["llm"], built["llm"]),
    ]
    return [(r.info.domain, r.info.name, obj) for r, obj in pairs if r is not None and obj is not None]


def _data_level(loaded: LoadedSettings, datasource: Resolved | None) -> tuple[SecurityLevel, str]:
    """The data's level (the highest of the settings' and the datasource's) and what set it."""
    settings = loaded.settings
    level, source = settings.security_level or SecurityLevel.UNOFFICIAL, "the settings' security_level"
    declared = settings.datasource.security_level
    if declared is None and datasource is not None:
        default = getattr(datasource.info.factory, "security_level", None)
        declared = parse_level(default) if default is not None else None
    if declared is not None and declared > level:
        level, source = declared, f"datasource '{settings.datasource.plugin}'"
    return level, source


def _check_clearances(loaded: LoadedSettings, plan: _Plan, level: SecurityLevel, source: str, checker: Checker) -> None:
    """Refuse, before any plugin is built, every recipient of the data cleared below its level.

    Variants' clients are checked as they are built, by :class:`~elspeth.orchestration.llm_factory.LLMFactory`.
    """
    settings = loaded.settings
    recipients: list[tuple[Resolved | None, PluginRef | None]] = [
        (plan.single["llm"], settings.llm),
        *zip(plan.lists["middleware"], settings.middleware, strict=True),
        *zip(plan.lists["sinks"], settings.sinks, strict=True),
    ]
    for resolved, ref in recipients:
        if resolved is None or ref is None:
            continue
        where = (*resolved.loc, "security_level") if ref.security_level is not None else resolved.loc
        info = resolved.info
        check_clearance(info.domain, info.name, ref.security_level, info.factory, (level, source), where, checker)


async def _open_table(source: Any, resolved: Resolved | None, ctx: PluginContext, checker: Checker) -> Table | None:
    assert resolved is not None
    loc: Loc = ("datasource",)
    try:
        table: Table = await call(source.load, ctx)
        return table
    except ElspethError as exc:
        checker.add(loc, f"datasource '{resolved.info.name}': {exc}")
    except (OSError, ValueError) as exc:  # ValueError: a path the operating system refuses (a NUL byte)
        checker.add(loc, f"datasource '{resolved.info.name}' cannot read its input: {exc}")
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _call_observers(registry: Registry, hook_name: str, warn_into: dict[str, Any], **kwargs: Any) -> None:
    """Call an observer hook through pluggy; a failing observer becomes a warning (see :mod:`elspeth._hooks`)."""
    call_observers(registry.manager, hook_name, warn_into, **kwargs)


async def execute(prepared: PreparedRun) -> RunResult:
    """Run the prepared run and hand its result to every sink.

    Raises:
        RunFailed: the orchestrator raised, or a sink could not write; the message says which, and the
            other sinks still write.

    """
    ctx = prepared.context
    store = ctx.store
    if store is None:
        return await _execute(prepared)
    loaded = prepared.loaded
    try:
        store.begin_run(
            ctx.run_id,
            name=ctx.name,
            orchestrator=prepared.orchestrator_name,
            settings=json.loads(json.dumps(loaded.raw, default=str)),
            settings_hash=loaded.digest(),
            settings_path=str(loaded.path.resolve()) if loaded.path else None,
            plugins=prepared.registry.plugin_versions(ctx.used),
        )
    except BaseException:
        store.close()
        raise
    try:
        result = await _execute(prepared)
    except RunFailed as exc:
        failed = exc.result.metadata.to_dict() if isinstance(exc.result, RunResult) else {}
        _record_failure(store, ctx.run_id, {**failed, "error": str(exc)})
        raise
    except BaseException as exc:
        _record_failure(store, ctx.run_id, {"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        ctx.commit_pending()  # rows whose workers were cancelled (a second Ctrl-C) while their commit waited
        store.close()
    return result


def _record_failure(store: RunStore, run_id: str, metadata: dict[str, Any]) -> None:
    try:
        store.finish_run(run_id, "failed", metadata)
    except StoreError as exc:  # the run's own error is the one to raise; a damaged store is said beside it
        log.warning("%s", exc)


async def _execute(prepared: PreparedRun) -> RunResult:
    observed = await observe_run(prepared)
    try:
        return await _execute_observed(prepared)
    finally:
        await observed.end()


async def _execute_observed(prepared: PreparedRun) -> RunResult:
    ctx = prepared.context
    settings = prepared.loaded.settings
    started_at = _now()
    t0 = time.perf_counter()
    _call_observers(
        prepared.registry,
        "run_started",
        ctx.extra,  # merged into the result's metadata when the run ends
        run_id=ctx.run_id,
        name=ctx.name,
        orchestrator=prepared.orchestrator_name,
        settings=settings.model_dump(mode="json"),
    )
    await _open_parts(prepared)
    timer = _time_limit(prepared)
    try:
        with fewer_collections():
            result: RunResult = await call(prepared.executor.run, prepared.orchestrator, prepared.table, ctx)
    except ElspethError:
        raise
    except Exception as exc:
        raise RunFailed(f"orchestrator '{prepared.orchestrator_name}' failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if timer is not None:
            timer.cancel()
        await _close_parts(prepared)
    meta = result.metadata
    meta.extra["security_level"] = str(ctx.security_level)
    # a plugin listed twice (two pii_redaction steps) is keyed by its place, name[i], so neither hides the other
    listed = Counter((domain, name) for domain, name, _ in prepared.parts)
    position: Counter[str] = Counter()
    for domain, name, part in prepared.parts:
        index = position[domain]
        position[domain] += 1
        summary = getattr(part, "summary", None)
        if summary is not None and domain not in ("cost_tracker", "llm_client"):
            key = f"{name}[{index}]" if listed[domain, name] > 1 else name
            meta.extra.setdefault(domain, {})[key] = dict(await call(summary))
    meta.started_at, meta.finished_at = started_at, _now()
    meta.duration_s = round(time.perf_counter() - t0, 6)
    meta.plugins = prepared.registry.plugin_versions(ctx.used)
    meta.extra.update(ctx.extra)
    if ctx.llm is not None and (costs := ctx.llm.cost_summary()) is not None:
        meta.extra.setdefault("cost", costs)
    meta.outcome = decide_outcome(
        cancel_reason=ctx.cancel.reason,
        early_stop=meta.early_stop,
        succeeded=meta.succeeded,
        failed=max(meta.failed, len(result.failures)),
        failures_are_verdicts=bool(getattr(prepared.orchestrator, "failures_are_verdicts", False)),
    )
    if ctx.prior:
        meta.extra["resumed_rows"] = len(ctx.prior)
    # a resumed run's metadata counts what its earlier attempts spent, too
    totals = add_earlier_attempts(meta, prepared.earlier, ctx.ledger.attempt.totals(), result.aggregates)
    meta.extra["totals"] = totals.to_dict()
    _, errors = await write_sinks(result, prepared)
    meta.outcome = meta.outcome.sinks_failed(errors)
    _call_observers(prepared.registry, "run_finished", meta.extra, run_id=ctx.run_id, result=result)
    if errors:
        raise RunFailed("; ".join(errors), result)
    if ctx.store is not None:
        ctx.store.finish_run(ctx.run_id, meta.status, meta.to_dict(), totals)
    return result


def _time_limit(prepared: PreparedRun) -> asyncio.TimerHandle | None:
    """With ``--max-seconds``: the timer that stops the run taking rows (cancel it once the run is done)."""
    seconds = prepared.options.max_seconds if prepared.options is not None else None
    if seconds is None:
        return None
    reason = f"time limit reached (--max-seconds {seconds:g})"
    return asyncio.get_running_loop().call_later(seconds, prepared.context.cancel.set, reason)


async def _open_parts(prepared: PreparedRun) -> None:
    for domain, name, part in prepared.parts:
        opener = getattr(part, "open", None)
        if opener is None or domain in ("datasource", "llm_client"):
            continue
        try:
            await call(opener, prepared.context.plugin_context)
        except Exception as exc:  # a part that cannot start stops the run before any row, naming it
            await _close_parts(prepared)
            raise RunFailed(f"{domain} '{name}' could not open: {type(exc).__name__}: {exc}") from exc


async def _close_parts(prepared: PreparedRun) -> None:
    for domain, name, part in prepared.parts:
        await close_plugins([(name, part)], label=domain, logger=log)


def run_settings(loaded: LoadedSettings, registry: Registry, *, progress: Progress | None = None) -> RunResult:
    """Prepare and execute in one call (for scripts and tests)."""

    async def main() -> RunResult:
        return await execute(await prepare(loaded, registry, progress=progress))

    return asyncio.run(main())


__all__ += ["ConfigError"]
