"""The figures of one ``score_significance`` cell.

The primary test, its intention-to-treat line, equivalence (TOST and "no worse than"), and the paired
pass rates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elspeth_experiment.plugins._methods import Method, PAt, interval_method, paired_estimate, unpaired_estimate
from elspeth_experiment.plugins._rows import Arm, accounting
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


def _worst(bs: dict[str, float], vs: dict[str, float], opts: SignificanceOptions) -> float:
    if opts.worst_score is not None:
        return opts.worst_score
    values = [*bs.values(), *vs.values()]
    return min(values) if opts.higher_is_better else max(values)


def intention_to_treat(
    base: Arm,
    var: Arm,
    bs: dict[str, float],
    vs: dict[str, float],
    paired: bool,
    opts: SignificanceOptions,
    main: dict[str, Any],
) -> dict[str, Any]:
    """The same test on every row either experiment took, a failed, unscored or untaken row as the worst score."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    worst = _worst(bs, vs, opts)
    rule = f"every row either experiment took; a failed, unscored or untaken row counts as the worst score, {worst:g}"
    if paired:
        universe = list(dict.fromkeys([*base.seen(), *var.seen()]))
        b_ids, v_ids = universe, universe
    else:
        b_ids, v_ids = base.seen(), var.seen()
    imputed = {"baseline": sum(1 for i in b_ids if i not in bs), "variant": sum(1 for i in v_ids if i not in vs)}
    line: dict[str, Any] = {"rule": rule, "worst_score": worst, "imputed": imputed, "unadjusted": True}
    if not any(imputed.values()):
        return {**line, "n": main["n"], "same_as_primary": True}
    b = np.fromiter((bs.get(i, worst) for i in b_ids), float, len(b_ids))
    v = np.fromiter((vs.get(i, worst) for i in v_ids), float, len(v_ids))
    figures, _ = _estimate(b, v, paired, opts)
    difference = float(v.mean() - b.mean())
    p = figures["p_value"]
    same = (p < opts.alpha) == (main["p_value"] < opts.alpha) and (difference > 0) == (main["mean_difference"] > 0)
    return {
        **line,
        "n": len(b_ids) if paired else min(len(b_ids), len(v_ids)),
        "same_as_primary": False,
        "mean_difference": difference,
        **figures,
        "agrees": same,
    }


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


def _flag_counts(bf: dict[str, bool], vf: dict[str, bool], ids: list[str]) -> tuple[int, int, int, int]:
    lost = sum(1 for i in ids if bf.get(i, False) and not vf.get(i, False))
    gained = sum(1 for i in ids if not bf.get(i, False) and vf.get(i, False))
    return lost, gained, sum(1 for i in ids if bf.get(i, False)), sum(1 for i in ids if vf.get(i, False))


def pass_rates(base: Arm, var: Arm, criterion: str, level: float) -> dict[str, Any] | None:
    """The paired pass-rate comparison of one criterion, with its intention-to-treat line (missing = fail)."""
    bf, vf = base.flags.get(criterion, {}), var.flags.get(criterion, {})
    ids = [i for i in bf if i in vf]
    if not ids:
        return None
    lost, gained, b_pass, v_pass = _flag_counts(bf, vf, ids)
    res = paired_pass_rates(lost, gained, len(ids), level)
    out: dict[str, Any] = {
        "design": "paired",
        "n": len(ids),
        "rows": accounting(base, var, bf, vf, True, len(ids)),
        "baseline_pass_rate": b_pass / len(ids),
        "variant_pass_rate": v_pass / len(ids),
        "baseline_ci": list(wilson(b_pass, len(ids), level) or ()),
        "variant_ci": list(wilson(v_pass, len(ids), level) or ()),
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
    universe = list(dict.fromkeys([*base.seen(), *var.seen()]))
    if len(universe) > len(ids):
        lost, gained, _, _ = _flag_counts(bf, vf, universe)
        itt = paired_pass_rates(lost, gained, len(universe), level)
        out["itt"] = {
            "rule": "every row either experiment took; a failed, unscored or untaken row counts as a fail",
            "n": len(universe),
            "pass_to_fail": lost,
            "fail_to_pass": gained,
            "difference": itt.difference,
            "ci": list(itt.ci),
            "p_value": itt.p_value,
            "unadjusted": True,
        }
    return out
