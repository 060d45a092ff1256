"""Cluster-robust standard errors of a difference in means: OLS of the score on the arm, CR1 by cluster.

With several samples per row (epochs) or several rows per document, the observations of one cluster
are not independent: a standard error that treats them as independent is too small. The estimate is the
difference in means of the two arms (the OLS slope of ``score ~ 1 + variant``); its variance is the
sandwich ``(X'X)^-1 (sum_g X_g' u_g u_g' X_g) (X'X)^-1`` with the small-sample factor
``G / (G - 1) * (N - 1) / (N - 2)``, as Stata's ``vce(cluster)`` and statsmodels' ``cov_type="cluster"``
compute it (G clusters, N observations). The test and interval use Student's t with G - 1 degrees of
freedom, the usual reference for few clusters.
"""

from __future__ import annotations

from typing import Any

__all__ = ["clustered_difference"]


def clustered_difference(scores: Any, variant: Any, clusters: Any, level: float) -> dict[str, Any] | None:
    """The variant's mean minus the baseline's, its cluster-robust SE, t, p and interval; None under 2 clusters.

    ``scores`` (float), ``variant`` (0 baseline, 1 variant) and ``clusters`` (any hashable labels) are
    one entry per observation.
    """
    import numpy as np  # type: ignore[import-untyped, unused-ignore]
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    y = np.asarray(scores, dtype=float)
    d = np.asarray(variant, dtype=float)
    _, groups = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    n, g = len(y), int(groups.max()) + 1 if len(y) else 0
    if g < 2 or n < 3 or d.min() == d.max():
        return None
    x = np.column_stack([np.ones(n), d])
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ (x.T @ y)
    resid = y - x @ beta
    scores_g = np.zeros((g, 2))
    np.add.at(scores_g, groups, x * resid[:, None])
    meat = scores_g.T @ scores_g
    factor = g / (g - 1) * (n - 1) / (n - 2)
    cov = factor * bread @ meat @ bread
    difference, se = float(beta[1]), float(np.sqrt(max(0.0, cov[1, 1])))  # rounding can leave -1e-20
    df = g - 1
    out: dict[str, Any] = {
        "method": "OLS of score on arm, cluster-robust (CR1) standard error, t with clusters - 1 df",
        "observations": n,
        "clusters": g,
        "difference": difference,
        "se": se,
        "df": df,
    }
    if se == 0:  # no spread left within the clusters: the difference is what every cluster shows
        out.update(t=None, p_value=0.0 if difference != 0 else 1.0, ci=[difference, difference])
        return out
    t = difference / se
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    out.update(t=t, p_value=float(2 * stats.t.sf(abs(t), df)), ci=[difference - half, difference + half])
    return out
