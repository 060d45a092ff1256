"""``elspeth run`` and ``elspeth validate``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sized
from pathlib import Path
from typing import Any

import typer

from elspeth.config import load_settings
from elspeth.datatypes import RunResult
from elspeth.engine import PreparedRun, execute, prepare
from elspeth.errors import ElspethError, RunFailed
from elspeth.registry import Registry
from elspeth.resume import RunOptions


def refuse_empty(prepared: PreparedRun) -> None:
    """Under ``--strict``, a datasource known to hold no rows (a CSV header without data) is a settings error.

    Without ``--strict`` the datasource warns and the run goes on with nothing to do.
    """
    rows = prepared.table.rows
    if isinstance(rows, Sized) and len(rows) == 0:
        checker = prepared.loaded.checker()
        source = prepared.loaded.settings.datasource
        where = ("datasource", "options", "path") if "path" in source.options else ("datasource",)
        checker.add(where, f"datasource '{source.plugin}' has no data rows (--strict refuses an empty input)")
        checker.raise_if_any()


def validate_command(settings_path: Path, registry: Registry, *, strict: bool = False) -> None:
    """Check the settings as a run would, with no row processed; with ``strict``, an empty input is an error."""
    loaded = load_settings(settings_path)
    prepared = asyncio.run(prepare(loaded, registry, options=RunOptions(record=False)))
    for warning in prepared.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if strict:
        refuse_empty(prepared)
    from elspeth.cli._estimate import estimate_line
    from elspeth.estimating import estimate_run

    # validate runs nothing, so its rows may be read for the estimate; never an unbounded stream's
    estimable = hasattr(prepared.orchestrator, "planned_calls") and not getattr(prepared.orchestrator, "streams", False)
    estimate = asyncio.run(estimate_run(prepared)) if estimable else None
    s = loaded.settings
    parts = [
        f"orchestrator {prepared.orchestrator_name}",
        f"datasource {s.datasource.plugin} ({len(prepared.table.columns)} columns)",
    ]
    if s.llm is not None:
        parts.append(f"llm {s.llm.plugin}")
    parts.append(f"{len(prepared.sinks)} sink{'s' if len(prepared.sinks) != 1 else ''}")
    typer.echo(f"{settings_path} is valid: {', '.join(parts)}")
    if estimate is not None and estimate.total.calls:
        typer.echo(estimate_line(estimate))


def _progress(enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from elspeth.cli._progress import RichProgress

    return RichProgress()


def run_command(
    settings_path: Path, registry: Registry, *, strict: bool, progress: bool | None, options: RunOptions | None = None
) -> int:
    """Run the settings, print a summary, and return the exit code.

    0 when the run finished; 1 when it failed: the orchestrator or a sink raised (:class:`RunFailed`
    propagates), every row failed, or (with ``strict``) any row failed; 3 when it finished but a quality
    gate failed (``gates:``; each failed gate is printed with its figures); 130 when stopped by Ctrl-C, except
    for a streaming orchestrator (``streams = True``), which a first signal drains and ends with 0.
    """
    loaded = load_settings(settings_path)
    options = options or RunOptions()
    if not options.force and not options.resume:
        from elspeth.cli._estimate import has_budget, refuse_over_budget

        if has_budget(loaded):  # before the run store opens: a refused run leaves nothing behind
            refuse_over_budget(loaded, registry)
    bar = _progress(progress)
    recorded: list[str] = []  # the run's id once the store records it: a crash can then be resumed
    streams: list[bool] = []  # whether the orchestrator streams: a signal then ends the run as its input's end does

    async def main() -> RunResult:
        prepared = await prepare(loaded, registry, progress=bar, options=options)
        for warning in prepared.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if strict:
            try:
                refuse_empty(prepared)
            except ElspethError:
                if prepared.context.store is not None:
                    prepared.context.store.close()
                raise
        streams.append(_streams(prepared, options))
        summary = getattr(prepared.orchestrator, "summary", None)
        _handle_interrupts(prepared.context.cancel, prepared.context.run_id, settings_path)
        if prepared.context.store is not None:
            recorded.append(prepared.context.run_id)
        result = await execute(prepared)
        _print_summary(result, summary)
        if recorded:
            _print_next_step(result, settings_path, recorded[0])
        return result

    try:
        result = asyncio.run(main())
    except RunFailed as exc:
        if isinstance(exc.result, RunResult):
            # the rows may all be done, but a run whose sink could not write has failed: say so
            _print_summary(exc.result, None)
        if recorded:  # the rows it finished are in the store
            typer.echo(f"resume with: elspeth run {settings_path} --resume {recorded[0]}")
        raise
    finally:
        if bar is not None:
            bar.close()
    return _exit_code(result, strict=strict, streams=streams[0])


def _exit_code(result: RunResult, *, strict: bool, streams: bool = False) -> int:
    """0 for a finished run, 130 after Ctrl-C (0 for a streaming run), 1 when rows failed, 3 for a gate."""
    if result.metadata.outcome.status == "interrupted" and not streams:
        return 130
    failed = _failed(result)
    if _every_row_failed(result):
        first = result.failures[0] if result.failures else None
        if first is not None:  # on stderr too: the error below points at it, and stdout may be a file
            typer.echo(f"  first failure: row {first.row_id} at {first.stage}: {first.error}", err=True)
        typer.echo(f"error: the run failed: all {failed} row(s) failed; the first failure is shown above", err=True)
        return 1
    if strict and failed:
        typer.echo(f"error: {failed} row(s) failed (--strict)", err=True)
        return 1
    return _gates_code(result)


def _gates_code(result: RunResult) -> int:
    """0, or 3 after each failed gate and its figures are said on stderr (stdout may be a file)."""
    failed = result.metadata.failed_gates
    for gate in failed:
        typer.echo(f"error: gate failed: {gate.name}: {gate.detail}", err=True)
    if failed:
        typer.echo(f"error: {len(failed)} of {len(result.metadata.gates)} gate(s) failed", err=True)
        return GATE_FAILED
    return 0


GATE_FAILED = 3
"""The exit code of a run that finished but did not meet a quality gate (1, 2 and 130 mean other things)."""


def _streams(prepared: PreparedRun, options: RunOptions | None) -> bool:
    """Whether the orchestrator streams (``streams = True``); ``--max-messages`` is refused for one that does not."""
    streams = bool(getattr(prepared.orchestrator, "streams", False))
    if options is not None and options.max_messages is not None and not streams:
        checker = prepared.loaded.checker()
        checker.add(
            ("orchestrator",), f"--max-messages bounds a streaming run; {prepared.orchestrator_name} is not one"
        )
        if prepared.context.store is not None:
            prepared.context.store.close()
        checker.raise_if_any()
    return streams


def _print_next_step(result: RunResult, settings_path: Path, run_id: str) -> None:
    """How to carry on a recorded run: retry its failures, or resume what it left (never after an early stop)."""
    if _every_row_failed(result):  # every row is finished, as a failure: only a retry helps
        typer.echo(f"retry the failed rows with: elspeth run {settings_path} --resume {run_id} --retry-errors")
    elif result.metadata.outcome.resumable:  # not after an early stop: resuming would stop again
        typer.echo(f"resume with: elspeth run {settings_path} --resume {run_id}")


def _failed(result: RunResult) -> int:
    return max(result.metadata.failed, len(result.failures))


def _every_row_failed(result: RunResult) -> bool:
    """A run that produced nothing but failures has failed (the engine's outcome says so)."""
    return result.metadata.outcome.status == "failed" and result.metadata.succeeded == 0 and _failed(result) > 0


def _handle_interrupts(cancel: Any, run_id: str, settings_path: Path) -> None:
    """Make Ctrl-C stop a run cleanly: the first press drains, the second quits.

    The first Ctrl-C (or SIGTERM) takes no new rows and lets calls in flight finish and be committed.
    A second leaves at once; every row committed so far stays in the store, so the run can resume.
    """
    import os
    import signal

    loop = asyncio.get_running_loop()

    def interrupt(signame: str) -> None:
        if cancel.is_set() and (cancel.reason or "").startswith("interrupted"):
            typer.echo(f"\nquitting now; resume with: elspeth run {settings_path} --resume {run_id}", err=True)
            os._exit(130)
        cancel.set(f"interrupted ({signame})")
        typer.echo(
            f"\n{signame}: finishing the calls in flight, then stopping; press Ctrl-C again to quit at once",
            err=True,
        )

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, interrupt, sig.name)
        except (NotImplementedError, RuntimeError):  # not the main thread, or a platform without them
            return


def _print_summary(result: RunResult, summary: Any) -> None:
    meta = result.metadata
    typer.echo(
        f"run {meta.run_id} ({meta.name}) {meta.outcome.status} in {meta.duration_s:.2f} s: "
        f"{meta.succeeded} records, {meta.failed} failures"
    )
    if meta.outcome.status != "completed" and meta.outcome.reason:
        typer.echo(f"  {meta.outcome.status}: {meta.outcome.reason}")
    if summary is not None:
        for line in summary(result):
            typer.echo(f"  {line}")
    if result.failures:
        first = result.failures[0]
        typer.echo(f"  first failure: row {first.row_id} at {first.stage}: {first.error}")
    for gate in meta.gates:
        typer.echo(f"  gate {'passed' if gate.passed else 'FAILED'}: {gate.name}: {gate.detail}")
    artifacts = meta.artifacts or []
    if artifacts:
        typer.echo("wrote:")
        cwd = Path.cwd()
        for artifact in artifacts:
            where = str(artifact.url or artifact.path)
            if "://" in where:  # an uploaded artifact is listed by its URL
                typer.echo(f"  {where}")
                continue
            p = Path(where)
            typer.echo(f"  {p.relative_to(cwd) if p.is_relative_to(cwd) else p}")
