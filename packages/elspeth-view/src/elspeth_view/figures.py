"""What the pages show beyond the stored rows: experiments side by side, comparisons, and a row's prompts.

A finished run's stored metadata carries its ``aggregates`` (what the sinks were given): for an
experiment suite, each experiment's counts and aggregator figures, and each variant's comparisons
with the baseline. They are nested dicts whose shape each plugin chooses, so they are flattened
here to dotted names of plain values (``score_stats.overall.mean``), one table row per name with
one column per experiment: any aggregator's figures line up without the viewer knowing it.

Rendered prompts are not stored with a row; they are rendered again from the run's stored settings
(``prompts``, with the experiment's own ``prompts`` over them) and the row's stored inputs, by
core's sandboxed templates, the same ones the run used. A template that needs more than the stored
inputs (a field a processor or retrieval added and did not keep) is reported as not renderable,
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elspeth import TemplateError, compile_template

__all__ = ["comparisons", "experiments_side_by_side", "flatten_figures", "prompts_for"]

Scalar = str | int | float | bool | None
_COUNTS = ("baseline", "rows", "succeeded", "failed", "not_run")


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) <= 4 and all(isinstance(v, int | float | str | bool) or v is None for v in value)
    return isinstance(value, str | int | float | bool) or value is None


def flatten_figures(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1, "ci": [0, 2]}}`` as ``{"a.b": 1, "a.ci": [0, 2]}``; long lists are left out."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, inner in value.items():
            out.update(flatten_figures(inner, f"{prefix}.{key}" if prefix else str(key)))
    elif _plain(value):
        out[prefix] = value
    return out


def experiments_side_by_side(aggregates: Any) -> dict[str, Any]:
    """Each experiment's counts and aggregator figures, as ``{"names": [...], "figures": [[name, v1, v2...]]}``.

    Figures are listed in the order they are first met; an experiment without a figure has None.
    Empty when the run kept no per-experiment aggregates (another orchestrator, or a failed run).
    """
    found = aggregates.get("experiments") if isinstance(aggregates, Mapping) else None
    if not isinstance(found, Mapping) or not found:
        return {"names": [], "figures": []}
    names = list(found)
    flat: dict[str, dict[str, Any]] = {}
    for name, summary in found.items():
        summary = summary if isinstance(summary, Mapping) else {}
        counts = {k: summary[k] for k in _COUNTS if k in summary}
        flat[name] = {**counts, **flatten_figures(summary.get("aggregates") or {})}
    keys = list(dict.fromkeys(k for name in names for k in flat[name]))
    return {"names": names, "figures": [[k, *(flat[n].get(k) for n in names)] for k in keys]}


def comparisons(aggregates: Any) -> list[dict[str, Any]]:
    """Each variant's comparisons with the baseline: one entry per variant and comparison plugin, figures flat."""
    found = aggregates.get("comparisons") if isinstance(aggregates, Mapping) else None
    if not isinstance(found, Mapping):
        return []
    out = []
    for variant, plugins in found.items():
        for plugin, result in (plugins or {}).items():
            out.append({"variant": variant, "plugin": plugin, "figures": flatten_figures(result)})
    return out


def _experiment_prompts(settings: Mapping[str, Any], group: str) -> dict[str, str]:
    prompts = dict(settings.get("prompts") or {})
    options = (settings.get("orchestrator") or {}).get("options") or {}
    for spec in options.get("experiments") or []:
        if isinstance(spec, Mapping) and spec.get("name") == group:
            prompts.update({k: v for k, v in (spec.get("prompts") or {}).items() if v is not None})
    return {k: v for k, v in prompts.items() if k in ("system", "user") and isinstance(v, str)}


def prompts_for(settings: Any, group: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The system and user prompts of ``group`` rendered with ``inputs``, or why they cannot be.

    Returns ``{"system": ..., "user": ...}`` (the templates the settings name), with ``error`` in
    place of them when a template cannot be rendered from what the store kept.
    """
    if not isinstance(settings, Mapping):
        return {}
    templates = _experiment_prompts(settings, group)
    values = {**inputs, "criterion": "default"}
    try:
        return {k: compile_template(src).render(values) for k, src in templates.items()}
    except TemplateError as exc:
        return {"error": f"cannot be rendered again from the stored inputs: {exc}"}
