"""``elspeth estimate``, the estimate line of ``elspeth validate``, and ``run``'s refusal of a run over its budget."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from elspeth.config import LoadedSettings, load_settings
from elspeth.engine import prepare
from elspeth.errors import ElspethError
from elspeth.estimating import Estimate, estimate_run, render_estimate
from elspeth.registry import Registry
from elspeth.resume import RunOptions


class OverBudget(ElspethError):
    """The estimate of a run exceeds its cost tracker's budget (``run`` refuses it unless ``--force``)."""


def estimate_command(settings_path: Path, registry: Registry, *, output_tokens: int, as_json: bool) -> None:
    """Print what the settings' run would call and cost, per experiment and in total; no LLM is called."""
    loaded = load_settings(settings_path)
    estimate = asyncio.run(_estimate(loaded, registry, output_tokens))
    if as_json:
        typer.echo(json.dumps(estimate.to_dict(), indent=2))
        return
    typer.echo(f"estimate for {settings_path} (no LLM called):")
    for line in render_estimate(estimate):
        typer.echo(line)


def estimate_line(estimate: Estimate) -> str:
    """One line for ``validate``: calls, input tokens, and the live and batch cost."""
    total = estimate.total
    tokens = f"{'' if total.inputs_exact else '~'}{total.input_tokens:,} input tokens"
    cur = f" {estimate.currency}" if estimate.currency else ""
    cost = f", {total.live_cost:,.4f}{cur} live ({total.batch_cost:,.4f} in batch)" if total.priced else ", unpriced"
    return f"estimate: {total.calls:,} LLM calls, {tokens}{cost} (elspeth estimate for the detail)"


def refuse_over_budget(loaded: LoadedSettings, registry: Registry) -> None:
    """Raise :class:`OverBudget` when the settings set a budget and the run's estimate exceeds it.

    Reads the input once more, through a run that records nothing; only when a budget is set.
    """
    estimate = asyncio.run(_estimate(loaded, registry, 256))
    if not estimate.over_budget():
        return
    total, cur = estimate.total, f" {estimate.currency}" if estimate.currency else ""
    raise OverBudget(
        f"the estimate of this run, {total.live_cost:,.4f}{cur} for {total.calls:,} LLM calls, exceeds its budget"
        f" of {estimate.budget:,.4f}{cur} (cost_tracker.options.budget); see `elspeth estimate`, or run it anyway"
        " with --force"
    )


def has_budget(loaded: LoadedSettings) -> bool:
    """Whether the settings' cost tracker sets a budget (then ``run`` checks the estimate first)."""
    tracker = getattr(loaded.settings, "cost_tracker", None)
    options = getattr(tracker, "options", None) or {}
    return isinstance(options, dict) and options.get("budget") is not None


async def _estimate(loaded: LoadedSettings, registry: Registry, output_tokens: int) -> Estimate:
    prepared = await prepare(loaded, registry, options=RunOptions(record=False))
    return await estimate_run(prepared, output_tokens=output_tokens)
