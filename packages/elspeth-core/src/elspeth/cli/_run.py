"""``elspeth run`` and ``elspeth validate``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import typer

from elspeth.config import load_settings
from elspeth.engine import execute, prepare
from elspeth.errors import RunFailed
from elspeth.registry import Registry
from elspeth.resume import RunOptions
from elspeth.types import RunResult


def validate_command(settings_path: Path, registry: Registry) -> None:
    """Check the settings as a run would, with no row processed."""
    loaded = load_settings(settings_path)
    prepared = asyncio.run(prepare(loaded, registry, options=RunOptions(record=False)))
    s = loaded.settings
    parts = [
        f"orchestrator {prepared.orchestrator_name}",
        f"datasource {s.datasource.plugin} ({len(prepared.table.columns)} columns)",
    ]
    if s.llm is not None:
        parts.append(f"llm {s.llm.plugin}")
    parts.append(f"{len(prepared.sinks)} sink{'s' if len(prepared.sinks) != 1 else ''}")
    typer.echo(f"{settings_path} is valid: {', '.join(parts)}")


def _progress(enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from elspeth.cli._progress import RichProgress

    return RichProgress()


def run_command(settings_path: Path, registry: Registry, *, strict: bool, progress: bool | None) -> int:
    """Run the settings, print a summary, and return the exit code."""
    loaded = load_settings(settings_path)
    bar = _progress(progress)

    async def main() -> RunResult:
        prepared = await prepare(loaded, registry, progress=bar)
        summary = getattr(prepared.orchestrator, "summary", None)
        result = await execute(prepared)
        _print_summary(result, summary)
        return result

    try:
        result = asyncio.run(main())
    except RunFailed as exc:
        if isinstance(exc.result, RunResult):
            _print_summary(exc.result, None)
        raise
    finally:
        if bar is not None:
            bar.close()
    if strict and result.failures:
        typer.echo(f"error: {len(result.failures)} row(s) failed (--strict)", err=True)
        return 1
    return 0


def _print_summary(result: RunResult, summary: Any) -> None:
    meta = result.metadata
    typer.echo(
        f"run {meta.run_id} ({meta.name}) {meta.status} in {meta.duration_s:.2f} s: "
        f"{meta.succeeded} records, {meta.failed} failures"
    )
    if summary is not None:
        for line in summary(result):
            typer.echo(f"  {line}")
    if result.failures:
        first = result.failures[0]
        typer.echo(f"  first failure: row {first.row_id} at {first.stage}: {first.error}")
    artifacts = meta.extra.get("artifacts") or []
    if artifacts:
        typer.echo("wrote:")
        cwd = Path.cwd()
        for artifact in artifacts:
            p = Path(artifact["path"] if isinstance(artifact, dict) else artifact)
            typer.echo(f"  {p.relative_to(cwd) if p.is_relative_to(cwd) else p}")
