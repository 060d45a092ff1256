"""``elspeth runs list|show`` and ``elspeth cache stats|clear``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from elspeth.config import load_settings
from elspeth.errors import ConfigError
from elspeth.resume import open_configured, resumable
from elspeth.store import RunStore


def _store(settings: Path | None, store: Path | None) -> RunStore:
    if store is not None:
        return RunStore.open(store, create=False)
    if settings is not None:
        return open_configured(load_settings(settings), create=False)
    return RunStore.open(Path("output") / "elspeth-runs.sqlite", create=False)


def _cost(run: dict[str, Any]) -> str:
    """Every attempt's cost: the store's totals (they outlive a killed attempt), in the tracker's currency."""
    tracker = (run.get("metadata") or {}).get("cost") or {}
    total = (run.get("totals") or {}).get("cost") or tracker.get("total_cost")
    if not tracker and not total:
        return "-"  # no cost tracker, so nothing was priced
    return f"{total or 0:.4f} {tracker.get('currency', '')}".strip()


def _duration(run: dict[str, Any]) -> str:
    """Every attempt's wall time."""
    seconds = (run.get("totals") or {}).get("duration_s") or (run.get("metadata") or {}).get("duration_s")
    return f"{seconds:.1f} s" if isinstance(seconds, int | float) else "-"


def _spent(run: dict[str, Any]) -> str:
    totals = run.get("totals") or {}
    tokens = (totals.get("prompt_tokens") or 0) + (totals.get("completion_tokens") or 0)
    calls = totals.get("llm_calls") or 0
    return (f"   tokens: {tokens:,}" if tokens else "") + (f"   LLM calls: {calls:,}" if calls else "")


def list_runs(settings: Path | None, store: Path | None, as_json: bool) -> None:
    """Print every run in the store, newest first."""
    opened = _store(settings, store)
    try:
        runs = opened.runs()
    finally:
        opened.close()
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in r.items() if k != "settings"} for r in runs], indent=2, default=str))
        return
    if not runs:
        typer.echo(f"no runs in {opened.path}")
        return
    headers = ["RUN ID", "NAME", "STATUS", "DONE", "FAILED", "PENDING", "COST", "STARTED", "DURATION"]
    rows = [
        [
            r["run_id"],
            r["name"],
            r["status"],
            str(r["done"]),
            str(r["failed"]),
            "?" if r["pending"] is None else str(r["pending"]),
            _cost(r),
            r["started_at"][:19].replace("T", " "),
            _duration(r),
        ]
        for r in runs
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def show_run(run_id: str, settings: Path | None, store: Path | None, as_json: bool) -> None:
    """Print one run in detail."""
    opened = _store(settings, store)
    try:
        run = opened.run(run_id)
    finally:
        opened.close()
    if as_json:
        typer.echo(json.dumps(run, indent=2, default=str))
        return
    meta = run.get("metadata") or {}
    pending = "unknown (the run never reported its total)" if run["pending"] is None else run["pending"]
    lines = [
        f"run {run['run_id']} ({run['name']}): {run['status']}",
        f"  orchestrator: {run['orchestrator']}",
        f"  rows: {run['done']} done, {run['failed']} failed, {pending} pending",
        f"  started: {run['started_at']}   finished: {run['finished_at'] or '-'}   duration: {_duration(run)}",
        f"  attempts: {run['attempts']}   cost: {_cost(run)}{_spent(run)}",
        f"  settings: {run['settings_path'] or '-'} (sha256 {run['settings_hash'][:12]})",
    ]
    if meta.get("stop_reason"):
        lines.append(f"  stopped: {meta['stop_reason']}")
    if meta.get("status_reason") and meta.get("status_reason") != meta.get("stop_reason"):
        lines.append(f"  {run['status']}: {meta['status_reason']}")
    if meta.get("error"):
        lines.append(f"  error: {meta['error']}")
    lines.append("  plugins:")
    lines += [f"    {p['domain']} {p['name']}: {p['distribution']} {p['version']}" for p in run["plugins"]]
    if resumable(run["status"], meta) and run["settings_path"]:
        lines.append(f"  resume: elspeth run {run['settings_path']} --resume {run['run_id']}")
    typer.echo("\n".join(lines))


def cache_command(action: str, settings: Path | None, path: Path | None) -> None:
    """``stats`` or ``clear`` the response cache named by ``path`` or by the settings' ``response_cache``."""
    from elspeth.cache import CacheFile, ResponseCache

    if path is None:
        if settings is None:
            raise ConfigError("name the cache: --settings SETTINGS (with a response_cache utility) or --path FILE")
        loaded = load_settings(settings)
        refs = [u for u in loaded.settings.utilities if u.plugin == ResponseCache.name]
        if not refs:
            raise ConfigError(f"{settings} has no response_cache utility; use --path FILE")
        options = ResponseCache.Options.model_validate(refs[0].options)
        path = loaded.output_dir / options.path
    if not path.is_file():
        typer.echo(f"no cache at {path}")
        return
    cache = CacheFile(path)
    try:
        if action == "clear":
            typer.echo(f"removed {cache.clear()} cached answers from {path}")
        else:
            stats = cache.stats()
            typer.echo(f"{stats['entries']} cached answers, {stats['bytes']} bytes, in {path}")
    finally:
        cache.close()
