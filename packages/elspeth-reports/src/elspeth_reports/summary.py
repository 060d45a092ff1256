"""What a report says about a run, as one JSON-ready mapping both report sinks render.

The experiment orchestrator's ``aggregates`` are read by shape, not by plugin name: a comparison whose
``criteria`` cells carry a numeric ``mean_difference`` and ``p_value`` is frequentist (``score_significance``),
one whose ``mean_difference`` is a mapping with ``prob_variant_better`` is Bayesian (``score_bayes``), and an
aggregate with a ``recommendation`` text is a recommendation. Anything else is kept as it came, so a
third-party plugin's figures still reach the report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeGuard

from elspeth import RunMetadata, RunResult
from elspeth_reports.__about__ import __version__

__all__ = ["SUMMARY_VERSION", "build_summary", "is_number"]

SUMMARY_VERSION = 1
_RETRY_METRICS = ("retries", "attempts", "validation_retries")


def is_number(value: Any) -> TypeGuard[int | float]:
    """True for a finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _failures(result: RunResult, examples: int) -> dict[str, Any]:
    fails = result.failures
    return {
        "count": len(fails),
        "by_stage": dict(Counter(f.stage for f in fails).most_common()),
        "by_experiment": dict(Counter(f.group for f in fails if f.group is not None).most_common()),
        "examples": [
            {
                "row_id": f.row_id,
                "experiment": f.group,
                "stage": f.stage,
                "error": f.error,
                "attempts": len(f.attempts),
            }
            for f in fails[:examples]
        ],
    }


def _retries(result: RunResult) -> dict[str, Any]:
    """Retries seen: failures' extra attempts, and retry counts records carry in their metrics."""
    failed_retried = [f for f in result.failures if len(f.attempts) > 1]
    by_metric: dict[str, dict[str, float]] = {}
    for record in result.records:
        for key in _RETRY_METRICS:
            value = record.metrics.get(key)
            if not is_number(value):
                continue
            # "attempts" counts the first try too; the others count only the extra ones
            extra = float(value) - 1 if key == "attempts" else float(value)
            if extra > 0:
                seen = by_metric.setdefault(key, {"records": 0, "retries": 0.0})
                seen["records"] += 1
                seen["retries"] += extra
    return {
        "failed_rows_retried": len(failed_retried),
        "failed_row_retries": sum(len(f.attempts) - 1 for f in failed_retried),
        "failed_row_attempts": sum(len(f.attempts) for f in result.failures),
        "records_retried": sum(int(v["records"]) for v in by_metric.values()),
        "record_retries": sum(v["retries"] for v in by_metric.values()),
        "record_metrics": by_metric,
    }


def _run_cost(cost: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The cost tracker's summary (``metadata.cost``), as the report shows it."""
    if not isinstance(cost, Mapping):
        return None
    total = cost.get("total_cost", cost.get("total"))
    return {"total": total if is_number(total) else None, "currency": cost.get("currency"), "detail": dict(cost)}


def _experiment_cost(aggregates: Mapping[str, Any]) -> dict[str, Any] | None:
    for value in aggregates.values():
        if isinstance(value, Mapping) and "rows_with_cost" in value and "total_tokens" in value:
            return {
                "total": _get(value, "cost", "total"),
                "mean_per_row": _get(value, "cost", "mean"),
                "tokens": _get(value, "total_tokens", "total"),
                "rows_with_cost": value.get("rows_with_cost"),
            }
    return None


def _latency(aggregates: Mapping[str, Any]) -> dict[str, Any] | None:
    for value in aggregates.values():
        if isinstance(value, Mapping) and "count" in value and "p95" in value and "median" in value:
            return {k: value.get(k) for k in ("count", "mean", "median", "p95", "p99", "max")}
    return None


def _recommendation(aggregates: Mapping[str, Any]) -> dict[str, Any] | None:
    for value in aggregates.values():
        if isinstance(value, Mapping) and isinstance(value.get("recommendation"), str):
            return dict(value)
    return None


def _scores(aggregates: Mapping[str, Any]) -> dict[str, Any] | None:
    for value in aggregates.values():
        overall = _get(value, "overall")
        if isinstance(overall, Mapping) and "mean" in overall:
            return {"overall": dict(overall), "criteria": dict(_get(value, "criteria") or {})}
    return None


def _experiments(aggs: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, exp in aggs["experiments"].items():
        exp = _mapping(exp)
        plugins = _mapping(exp.get("aggregates"))
        out.append(
            {
                "name": str(name),
                "baseline": bool(exp.get("baseline")),
                "rows": exp.get("rows"),
                "succeeded": exp.get("succeeded"),
                "failed": exp.get("failed"),
                "not_run": exp.get("not_run"),
                "early_stop": exp.get("early_stop"),
                "scores": _scores(plugins),
                "cost": _experiment_cost(plugins),
                "latency": _latency(plugins),
                "recommendation": _recommendation(plugins),
                "aggregates": dict(plugins),
            }
        )
    return out


def _interval(value: Any) -> list[float] | None:
    if isinstance(value, Sequence) and len(value) == 2 and all(is_number(v) for v in value):
        return [float(value[0]), float(value[1])]
    return None


def _frequentist(cell: Mapping[str, Any], plugin: str, result: Mapping[str, Any]) -> dict[str, Any]:
    power = _mapping(cell.get("power"))
    mcnemar = cell.get("mcnemar") if isinstance(cell.get("mcnemar"), Mapping) else None
    return {
        "plugin": plugin,
        "design": cell.get("design"),
        "n": cell.get("n"),
        "baseline_mean": cell.get("baseline_mean"),
        "variant_mean": cell.get("variant_mean"),
        "mean_difference": cell.get("mean_difference"),
        "ci": _interval(cell.get("ci")),
        "ci_level": cell.get("ci_level", cell.get("confidence")),
        "ci_method": cell.get("ci_method"),
        "test": cell.get("test"),
        "p_value": cell.get("p_value"),
        "p_adjusted": cell.get("p_adjusted"),
        "correction": result.get("correction"),
        "family_size": cell.get("family_size"),
        "alpha": result.get("alpha"),
        "significant": cell.get("significant"),
        "cohens_d": cell.get("cohens_d"),
        "cliffs_delta": cell.get("cliffs_delta"),
        "cliffs_label": cell.get("cliffs_label"),
        "power_warning": power.get("warning") or cell.get("warning"),
        "n_required": power.get("n_required"),
        "mcnemar": (
            {
                k: mcnemar.get(k)
                for k in ("n", "p_value", "p_adjusted", "pass_to_fail", "fail_to_pass", "difference", "ci", "method")
            }
            if mcnemar
            else None
        ),
        "rows": dict(_mapping(cell.get("rows"))) or None,
        "itt": _pick(cell.get("itt"), ("same_as_primary", "n", "worst_score", "imputed", "mean_difference", "ci")),
        "itt_p_value": _mapping(cell.get("itt")).get("p_value"),
        "itt_agrees": _mapping(cell.get("itt")).get("agrees"),
        "equivalence": _pick(cell.get("equivalence"), ("margin", "no_worse", "tost")),
        "p_values_hold": cell.get("p_values_hold"),
    }


def _pick(value: Any, keys: Sequence[str]) -> dict[str, Any] | None:
    """The ``keys`` of a mapping that has them, or None (older results carry none of these blocks)."""
    mapping = _mapping(value)
    return {k: mapping[k] for k in keys if k in mapping} or None


def _bayesian(cell: Mapping[str, Any], plugin: str) -> dict[str, Any]:
    mean = cell["mean_difference"]
    rate = cell.get("pass_rate") if isinstance(cell.get("pass_rate"), Mapping) else None
    return {
        "plugin": plugin,
        "design": cell.get("design"),
        "mean_difference": mean.get("mean"),
        "prob_variant_better": mean.get("prob_variant_better"),
        "credible_interval": _interval(mean.get("credible_interval")),
        "credibility": mean.get("credibility"),
        "pass_rate": (
            {
                "difference": rate.get("mean"),
                "prob_variant_better": rate.get("prob_variant_better"),
                "credible_interval": _interval(rate.get("credible_interval")),
            }
            if rate
            else None
        ),
    }


def _comparison(variant: str, baseline: Any, plugins: Mapping[str, Any]) -> dict[str, Any]:
    criteria: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    other: dict[str, Any] = {}
    for plugin, result in plugins.items():
        if not isinstance(result, Mapping):
            other[str(plugin)] = result
            continue
        if isinstance(result.get("error"), str):
            errors[str(plugin)] = result["error"]
            continue
        cells = result.get("criteria")
        known = False
        if isinstance(cells, Mapping):
            for criterion, cell in cells.items():
                if not isinstance(cell, Mapping):
                    continue
                row = criteria.setdefault(str(criterion), {"criterion": str(criterion)})
                if (
                    isinstance(cell.get("mean_difference"), Mapping)
                    and "prob_variant_better" in cell["mean_difference"]
                ):
                    row["bayes"] = _bayesian(cell, str(plugin))
                    known = True
                elif "p_value" in cell:
                    row["frequentist"] = _frequentist(cell, str(plugin), result)
                    known = True
                elif cell.get("warning"):
                    row.setdefault("warnings", []).append(f"{plugin}: {cell['warning']}")
                    known = True
        if not known:
            other[str(plugin)] = dict(result)
    return {
        "variant": variant,
        "baseline": baseline,
        "criteria": list(criteria.values()),
        "errors": errors,
        "other": other,
    }


def _early_stop(meta: RunMetadata, experiments: list[dict[str, Any]]) -> dict[str, Any]:
    """Each experiment's early stop, or else the run's own."""
    early = {e["name"]: e["early_stop"] for e in experiments if e["early_stop"]}
    return early or dict(meta.early_stop or {})


def _run_part(meta: RunMetadata) -> dict[str, Any]:
    return {
        "run_id": meta.run_id,
        "name": meta.name,
        "orchestrator": meta.orchestrator,
        "status": meta.status,
        "started_at": meta.started_at,
        "finished_at": meta.finished_at,
        "duration_s": meta.duration_s,
        "security_level": meta.security_level,
    }


def _rows_part(result: RunResult, experiments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "input_rows": result.metadata.rows,
        "records": len(result.records),
        "failures": len(result.failures),
        "not_run": sum(e["not_run"] or 0 for e in experiments if is_number(e["not_run"])),
    }


def _breakdowns(summary: dict[str, Any], aggs: Mapping[str, Any] | None) -> None:
    """Repeated samples (``epochs``) and the ``group_by`` breakdown of an experiment run; each None when unused."""
    if aggs is None:  # not an experiment run
        return
    from elspeth_reports.breakdowns import epochs_part, groups_part

    summary["epochs"], summary["groups"] = epochs_part(aggs), groups_part(aggs)


def build_summary(
    result: RunResult,
    *,
    failure_examples: int = 5,
    include_metadata: bool = True,
    include_aggregates: bool = True,
    include_comparisons: bool = True,
) -> dict[str, Any]:
    """The report's content: rows, failures, retries, early stop, cost, experiments, comparisons, recommendations.

    Args:
        result: the run's result, as sinks receive it.
        failure_examples: how many failures to show in full (row id, stage, error).
        include_metadata: add the run's metadata (plugins, timings, extra facts) under ``metadata``.
        include_aggregates: add each experiment's raw aggregates (or a plain run's ``aggregates``).
        include_comparisons: add the baseline comparisons.

    Example::

        summary = build_summary(result)
        summary["comparisons"][0]["criteria"][0]["frequentist"]["p_adjusted"]

    """
    meta = result.metadata
    aggs = result.aggregates if isinstance(result.aggregates, Mapping) else {}
    is_experiment = isinstance(aggs.get("experiments"), Mapping)
    experiments = _experiments(aggs) if is_experiment else []
    summary: dict[str, Any] = {
        "report": {
            "version": SUMMARY_VERSION,
            "generator": f"elspeth-reports {__version__}",
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "run": _run_part(meta),
        "rows": _rows_part(result, experiments),
        "failures": _failures(result, failure_examples),
        "retries": _retries(result),
        "early_stop": _early_stop(meta, experiments),
        "cost": {"run": _run_cost(meta.cost), "experiments": {e["name"]: e["cost"] for e in experiments if e["cost"]}},
        "baseline": aggs.get("baseline") if is_experiment else None,
        "experiments": experiments,
        "recommendations": {e["name"]: e["recommendation"] for e in experiments if e["recommendation"]},
        "gates": [gate.to_dict() for gate in meta.gates],
    }
    if not include_aggregates:
        for exp in experiments:
            exp.pop("aggregates")
    elif not is_experiment:
        summary["aggregates"] = dict(aggs)
    if include_comparisons:
        comparisons = aggs.get("comparisons") if is_experiment else None
        summary["comparisons"] = [
            _comparison(str(variant), aggs.get("baseline"), plugins)
            for variant, plugins in (comparisons or {}).items()
            if isinstance(plugins, Mapping)
        ]
    _breakdowns(summary, aggs if is_experiment else None)
    if include_metadata:
        summary["metadata"] = meta.to_dict()
    return summary
