"""The figures of one ``score_significance`` cell.

The primary test, its intention-to-treat line, equivalence (TOST and "no worse than"), and the paired
pass rates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elspeth_experiment.plugins._methods import Method, PAt, interval_method, paired_estimate, unpaired_estimate
from elspeth_experiment.plugins._rows import Pair, accounting
from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.intervals import paired_pass_rates, wilson

if TYPE_CHECKING:
    from elspeth_experiment.plugins.significance import SignificanceOptions

__all__ = ["equivalence", "intention_to_treat", "pass_rates", "primary"]


def _method(n: int, opts: SignificanceOptions) -> Method:
    if opts.test == "auto":
        return "bootstrap" if n < opts.bootstrap_below else "t"
    return opts.test


def _estimate(b: Any, v: Any, paired: bool, opts: SignificanceOptions) -> tuple[dict[str, Any], PAt | None]:
    level, resamples, seed = opts.level, opts.bootstrap_resamples, opts.seed
    if paired:
        figures, p_at = paired_estimate(v - b, _method(len(b), opts), level, resamples, seed)
    else:
        figures, p_at = unpaired_estimate(b, v, _method(min(len(b), len(v)), opts), level, resamples, seed)
    method = _method(len(b) if paired else min(len(b), len(v)), opts)
    figures["ci_method"] = interval_method(method, paired, figures["test"])
    return figures, p_at


def primary(b: Any, v: Any, paired: bool, opts: SignificanceOptions) -> tuple[dict[str, Any], PAt | None]:
    """The cell's figures from numpy arrays (paired: aligned by row): the one method, then the others for reference."""
    figures, p_at = _estimate(b, v, paired, opts)
    out: dict[str, Any] = {
        "design": "paired" if paired else "unpaired",
        "n": len(b) if paired else min(len(b), len(v)),
        "baseline_mean": float(b.mean()),
        "variant_mean": float(v.mean()),
        "mean_difference": float((v - b).mean()) if paired else float(v.mean() - b.mean()),
        "ci_level": opts.level,
        **figures,
    }
    if paired:
        diffs = v - b
        t, w = fq.paired_t(diffs), fq.wilcoxon(diffs)
        out.update(
            paired_t=t.to_dict() if t else None,
            wilcoxon=w.to_dict() if w else None,
            cohens_d=fq.cohens_dz(diffs),
            cohens_d_kind="d_z: mean paired difference / SD of the differences",
        )
    else:
        welch, mw = fq.welch_t(b, v), fq.mann_whitney(b, v)
        out.update(
            n_baseline=len(b),
            n_variant=len(v),
            welch_t=welch.to_dict() if welch else None,
            mann_whitney=mw.to_dict() if mw else None,
            cohens_d=fq.cohens_d_pooled(b, v),
            cohens_d_kind="d: difference of means / pooled SD",
        )
    out["cliffs_delta"] = fq.cliffs_delta(b, v)
    return out, p_at


def _worst(b: Any, v: Any, opts: SignificanceOptions) -> float:
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    if opts.worst_score is not None:
        return opts.worst_score
    pick = np.nanmin if opts.higher_is_better else np.nanmax
    return float(pick([pick(b), pick(v)]))


def intention_to_treat(
    b_all: Any, v_all: Any, paired: bool, opts: SignificanceOptions, main: dict[str, Any]
) -> dict[str, Any]:
    """The same test on every row either experiment took, a failed, unscored or untaken row as the worst score.

    ``b_all`` and ``v_all`` are the score columns with NaN where there is no score: over the pair's rows
    when paired, over each experiment's own rows when not.
    """
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    worst = _worst(b_all, v_all, opts)
    rule = f"every row either experiment took; a failed, unscored or untaken row counts as the worst score, {worst:g}"
    b_missing, v_missing = np.isnan(b_all), np.isnan(v_all)
    imputed = {"baseline": int(b_missing.sum()), "variant": int(v_missing.sum())}
    line: dict[str, Any] = {"rule": rule, "worst_score": worst, "imputed": imputed, "unadjusted": True}
    if not any(imputed.values()):
        return {**line, "n": main["n"], "same_as_primary": True}
    b, v = np.where(b_missing, worst, b_all), np.where(v_missing, worst, v_all)
    figures, _ = _estimate(b, v, paired, opts)
    difference = float(v.mean() - b.mean())
    p = figures["p_value"]
    same = (p < opts.alpha) == (main["p_value"] < opts.alpha) and (difference > 0) == (main["mean_difference"] > 0)
    n = len(b) if paired else min(len(b), len(v))
    return {**line, "n": n, "same_as_primary": False, "mean_difference": difference, **figures, "agrees": same}


def equivalence(p_at: PAt | None, main: dict[str, Any], opts: SignificanceOptions) -> dict[str, Any]:
    """TOST within plus or minus ``margin`` and the one-sided "no worse than by more than margin" claim."""
    m = opts.margin
    assert m is not None
    if p_at is None:
        return {"margin": m, "method": main["test"], "no_worse": {"p_value": None}, "warning": "no test"}
    p_low, p_high = p_at(-m, "greater"), p_at(m, "less")
    p_worse = p_low if opts.higher_is_better else p_high
    side = "lower" if opts.higher_is_better else "higher"
    return {
        "margin": m,
        "method": main["test"],
        "no_worse": {
            "claim": f"the variant's mean is no more than {m:g} {side} than the baseline's (non-inferiority)",
            "p_value": p_worse,
        },
        "tost": {
            "claim": f"the means differ by less than {m:g} either way (equivalence, two one-sided tests)",
            "p_lower": p_low,
            "p_upper": p_high,
            "p_value": max(p_low, p_high),
            "equivalent": max(p_low, p_high) < opts.alpha,
        },
    }


def _counts(bf: Any, vf: Any, rows: Any) -> tuple[int, int, int, int]:
    """Pass to fail, fail to pass, baseline passes and variant passes over ``rows`` (a missing flag is a fail)."""
    bp, vp = (bf == 1) & rows, (vf == 1) & rows
    return int((bp & ~vp).sum()), int((~bp & vp & rows).sum()), int(bp.sum()), int(vp.sum())


def pass_rates(pair: Pair, criterion: str, level: float) -> dict[str, Any] | None:
    """The paired pass-rate comparison of one criterion, with its intention-to-treat line (missing = fail)."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    bf, vf = pair.columns(criterion, flags=True)
    b_have, v_have = bf >= 0, vf >= 0
    both = b_have & v_have
    n = int(both.sum())
    if not n:
        return None
    lost, gained, b_pass, v_pass = _counts(bf, vf, both)
    res = paired_pass_rates(lost, gained, n, level)
    out: dict[str, Any] = {
        "design": "paired",
        "n": n,
        "rows": accounting(pair, pair.base, pair.var, b_have, v_have),
        "baseline_pass_rate": b_pass / n,
        "variant_pass_rate": v_pass / n,
        "baseline_ci": list(wilson(b_pass, n, level) or ()),
        "variant_ci": list(wilson(v_pass, n, level) or ()),
        "pass_rate_ci_method": "Wilson score interval",
        "pass_to_fail": lost,
        "fail_to_pass": gained,
        "difference": res.difference,
        "ci": list(res.ci),
        "ci_level": level,
        "statistic": float(gained),
        "p_value": res.p_value,
        "df": None,
        "method": res.method,
    }
    if pair.size > n:
        lost, gained, _, _ = _counts(bf, vf, np.ones(pair.size, bool))
        itt = paired_pass_rates(lost, gained, pair.size, level)
        out["itt"] = {
            "rule": "every row either experiment took; a failed, unscored or untaken row counts as a fail",
            "n": pair.size,
            "pass_to_fail": lost,
            "fail_to_pass": gained,
            "difference": itt.difference,
            "ci": list(itt.ci),
            "p_value": itt.p_value,
            "unadjusted": True,
        }
    return out
