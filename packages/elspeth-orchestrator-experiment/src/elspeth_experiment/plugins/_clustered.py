"""The clustered line of ``score_significance``: every epoch of every row, standard errors clustered.

With ``epochs: K`` the rows' K samples are observations of the same row, and with ``cluster_by`` the
rows of one document (product, ...) are not independent either. This line regresses every observation's
score on the arm and clusters the standard error by row (or by the ``cluster_by`` column), on the rows
of the primary analysis: with pairing, the rows both experiments scored; without, each one's own.
"""

from __future__ import annotations

from typing import Any

from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats.cluster import clustered_difference

__all__ = ["clustered", "wants_clustering"]


def wants_clustering(baseline: ExperimentResult, variant: ExperimentResult, cluster_by: str | None) -> bool:
    """True when the observations are clustered: repeated epochs in either experiment, or a ``cluster_by`` column."""
    return cluster_by is not None or baseline.epochs > 1 or variant.epochs > 1


def _observations(
    result: ExperimentResult, source_field: str, criterion: str, cluster_by: str | None
) -> dict[str, tuple[str, list[float]]]:
    """``{row_id: (cluster, [each epoch's score])}`` for the rows with at least one score on ``criterion``."""
    out: dict[str, tuple[str, list[float]]] = {}
    for record in result.records:
        epochs = (record.metrics.get("epoch_scores") or {}).get(criterion)
        if epochs is None:
            epochs = [(record.metrics.get(source_field) or {}).get(criterion)]
        values = [float(v) for v in epochs if isinstance(v, int | float) and not isinstance(v, bool)]
        if values:
            cluster = record.row_id if cluster_by is None else str(record.inputs.get(cluster_by))
            out[record.row_id] = (cluster, values)
    return out


def clustered(
    baseline: ExperimentResult,
    variant: ExperimentResult,
    criterion: str,
    *,
    source_field: str,
    cluster_by: str | None,
    paired: bool,
    level: float,
) -> dict[str, Any] | None:
    """The variant's mean minus the baseline's over every epoch, with its cluster-robust SE and test."""
    base = _observations(baseline, source_field, criterion, cluster_by)
    var = _observations(variant, source_field, criterion, cluster_by)
    if paired:
        shared = base.keys() & var.keys()
        base = {k: v for k, v in base.items() if k in shared}
        var = {k: v for k, v in var.items() if k in shared}
    scores: list[float] = []
    arm: list[int] = []
    clusters: list[str] = []
    for flag, table in ((0, base), (1, var)):
        for cluster, values in table.values():
            scores.extend(values)
            arm.extend([flag] * len(values))
            clusters.extend([cluster] * len(values))
    out = clustered_difference(scores, arm, clusters, level)
    if out is None:
        return None
    out["cluster_by"] = cluster_by or "row"
    if cluster_by is not None:  # the primary line takes rows as independent, which this column says they are not
        out["note"] = (
            f"rows sharing a '{cluster_by}' are not independent: this line's standard error, test and interval "
            "hold; the primary line's take every row as independent"
        )
    out["rows"] = {"baseline": len(base), "variant": len(var)}
    return out
