"""Executing a prepared run: the orchestrator, the run's metadata, the sinks and the run store.

:func:`execute` is :func:`elspeth.engine.prepare`'s other half: it opens the run's parts, runs the
orchestrator, gives the metadata the facts the engine owns (the outcome, the totals over every
attempt, the parts' summaries), hands the result to the sinks and records the run in the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from elspeth._gc import fewer_collections
from elspeth._hooks import call_observers
from elspeth._sync import invoke
from elspeth.datatypes import RunResult
from elspeth.errors import ElspethError, RunFailed
from elspeth.observing import observe_run
from elspeth.orchestration.subplugins import close_plugins
from elspeth.outcome import decide_outcome
from elspeth.resume import add_earlier_attempts
from elspeth.store import RunStore, StoreError
from elspeth.writing import write_sinks

if TYPE_CHECKING:
    from elspeth.engine import PreparedRun

__all__ = ["execute"]

log = logging.getLogger("elspeth")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    started_at = _now()
    t0 = time.perf_counter()
    result = await _run_orchestrator(prepared)
    meta = result.metadata
    meta.security_level = str(ctx.security_level)
    meta.summaries = await _summaries(prepared.parts)
    meta.started_at, meta.finished_at = started_at, _now()
    meta.duration_s = round(time.perf_counter() - t0, 6)
    meta.plugins = prepared.registry.plugin_versions(ctx.used)
    meta.extra.update(ctx.extra)
    meta.warnings.extend(ctx.warnings)
    if ctx.llm is not None and (costs := ctx.llm.cost_summary()) is not None:
        meta.cost = dict(costs)
    meta.outcome = decide_outcome(
        cancel_reason=ctx.cancel.reason,
        early_stop=meta.early_stop,
        succeeded=meta.succeeded,
        failed=max(meta.failed, len(result.failures)),
        failures_are_verdicts=bool(getattr(prepared.orchestrator, "failures_are_verdicts", False)),
    )
    if ctx.prior:
        meta.resumed_rows = len(ctx.prior)
    # a resumed run's totals and duration count its earlier attempts, too
    totals = add_earlier_attempts(meta, prepared.earlier, ctx.ledger.attempt.totals())
    _, errors = await write_sinks(result, prepared)
    meta.outcome = meta.outcome.sinks_failed(errors)
    call_observers(prepared.registry.manager, "run_finished", meta.warnings, run_id=ctx.run_id, result=result)
    if errors:
        raise RunFailed("; ".join(errors), result)
    if ctx.store is not None:
        ctx.store.finish_run(ctx.run_id, meta.status, {**meta.to_dict(), "aggregates": result.aggregates}, totals)
    return result


async def _run_orchestrator(prepared: PreparedRun) -> RunResult:
    """Tell the observers the run started, open the parts, run the orchestrator, close the parts."""
    ctx = prepared.context
    call_observers(
        prepared.registry.manager,
        "run_started",
        ctx.warnings,  # the result's metadata gets them when the run ends
        run_id=ctx.run_id,
        name=ctx.name,
        orchestrator=prepared.orchestrator_name,
        settings=prepared.loaded.settings.model_dump(mode="json"),
    )
    await _open_parts(prepared)
    timer = _time_limit(prepared)
    try:
        with fewer_collections():
            result: RunResult = await invoke(prepared.executor.run, prepared.orchestrator, prepared.table, ctx)
    except ElspethError:
        raise
    except Exception as exc:
        raise RunFailed(f"orchestrator '{prepared.orchestrator_name}' failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if timer is not None:
            timer.cancel()
        await _close_parts(prepared)
    return result


async def _summaries(parts: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
    """Each part's ``summary()`` by domain and name; a plugin listed twice is keyed by its place, ``name[i]``."""
    listed = Counter((domain, name) for domain, name, _ in parts)
    position: Counter[str] = Counter()
    summaries: dict[str, dict[str, Any]] = {}
    for domain, name, part in parts:
        index = position[domain]
        position[domain] += 1
        summary = getattr(part, "summary", None)
        if summary is not None and domain not in ("cost_tracker", "llm_client"):
            key = f"{name}[{index}]" if listed[domain, name] > 1 else name
            summaries.setdefault(domain, {})[key] = dict(await invoke(summary))
    return summaries


async def _open_parts(prepared: PreparedRun) -> None:
    for domain, name, part in prepared.parts:
        opener = getattr(part, "open", None)
        if opener is None or domain in ("datasource", "llm_client"):
            continue
        try:
            await invoke(opener, prepared.context.plugin_context)
        except Exception as exc:  # a part that cannot start stops the run before any row, naming it
            await _close_parts(prepared)
            raise RunFailed(f"{domain} '{name}' could not open: {type(exc).__name__}: {exc}") from exc


def _time_limit(prepared: PreparedRun) -> asyncio.TimerHandle | None:
    """With ``--max-seconds``: the timer that stops the run taking rows (cancel it once the run is done)."""
    seconds = prepared.options.max_seconds if prepared.options is not None else None
    if seconds is None:
        return None
    reason = f"time limit reached (--max-seconds {seconds:g})"
    return asyncio.get_running_loop().call_later(seconds, prepared.context.cancel.set, reason)


async def _close_parts(prepared: PreparedRun) -> None:
    for domain, name, part in prepared.parts:
        await close_plugins([(name, part)], label=domain, logger=log)
