"""``score_significance``: frequentist comparison of every variant with the baseline, Holm-corrected.

Per variant and criterion, over the rows both experiments scored:

* **paired** (row ids match, at least ``min_samples`` pairs): mean difference with a seeded percentile
  bootstrap interval, paired t-test, Wilcoxon signed-rank, Cohen's d_z, Cliff's delta;
* **unpaired** fallback: Welch t-test with its interval, Mann-Whitney U, Cohen's d (pooled SD), Cliff's delta;
* McNemar's test on pass/fail flags of the paired rows, when ``score_extractor`` set a threshold;
* the sample size needed for the target power at a planning effect (``min_effect``, default 0.3), with
  a warning below it. The observed effect is never used for this: power computed from the effect just
  observed is a restatement of the p-value (the post-hoc power fallacy) and says nothing new.

The p-values of the primary test over all variants x criteria form one family, adjusted with Holm's
step-down method; McNemar's p-values form a second family. That is why the plugin implements
``compare_all`` (it sees every variant at once) rather than ``compare``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth_experiment.plugins._scores import criteria_of, flag_table, score_table
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.power import Design, required_n

__all__ = ["ScoreSignificance", "SignificanceOptions", "analyse", "mcnemar_flags"]


class SignificanceOptions(BaseModel):
    """Options of ``score_significance``."""

    model_config = ConfigDict(extra="forbid")

    criteria: list[str] | None = Field(None, description="criteria to compare (default: every one scored)")
    source_field: str = Field("scores", description="the record metric holding scores per criterion")
    flag_field: str = Field("score_flags", description="the record metric holding pass flags, for McNemar")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance level, applied to Holm-adjusted p-values")
    test: Literal["t", "rank"] = Field(
        "t", description="primary test: t (paired t / Welch) or rank (Wilcoxon signed-rank / Mann-Whitney U)"
    )
    pairing: Literal["auto", "never"] = Field(
        "auto", description="auto: pair rows by id when at least min_samples pairs exist; never: always unpaired"
    )
    correction: Literal["holm", "none"] = Field("holm", description="multiple-comparison correction")
    min_samples: int = Field(5, ge=2, description="fewest pairs (or values per group) to test at all")
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the interval of the mean difference")
    bootstrap_resamples: int = Field(10_000, ge=100, le=1_000_000, description="bootstrap resamples (paired)")
    seed: int = Field(0, description="bootstrap seed; the same seed and data give the same interval")
    power: float = Field(0.8, gt=0, lt=1, description="target power for the sample-size warning")
    min_effect: float = Field(
        0.3,
        gt=0,
        description="smallest standardised effect worth detecting, for the sample-size warning: Cohen's d_z "
        "(mean difference / SD of differences) when paired, d (pooled SD) when unpaired; 0.3 is between "
        "Cohen's small (0.2) and medium (0.5). Never the observed effect: that is post-hoc power",
    )


def _paired(
    base: Mapping[str, float], var: Mapping[str, float], ids: list[str], opts: SignificanceOptions
) -> dict[str, Any]:
    b, v = [base[i] for i in ids], [var[i] for i in ids]
    diffs = [y - x for x, y in zip(b, v, strict=True)]
    t, w = fq.paired_t(diffs), fq.wilcoxon(diffs)
    ci = fq.bootstrap_mean_ci(diffs, opts.confidence, opts.bootstrap_resamples, opts.seed)
    primary = t if opts.test == "t" else w
    return {
        "design": "paired",
        "n": len(ids),
        "baseline_mean": statistics.fmean(b),
        "variant_mean": statistics.fmean(v),
        "mean_difference": statistics.fmean(diffs),
        "ci": list(ci) if ci else None,
        "ci_level": opts.confidence,
        "ci_method": f"percentile bootstrap of the mean paired difference, {opts.bootstrap_resamples} resamples, "
        f"seed {opts.seed}",
        "paired_t": t.to_dict() if t else None,
        "wilcoxon": w.to_dict() if w else None,
        "cohens_d": fq.cohens_dz(diffs),
        "cohens_d_kind": "d_z: mean paired difference / SD of the differences",
        "cliffs_delta": fq.cliffs_delta(b, v),
        "test": primary.method if primary else None,
        "p_value": primary.p_value if primary else None,
    }


def _unpaired(base: Sequence[float], var: Sequence[float], opts: SignificanceOptions) -> dict[str, Any]:
    welch, mw = fq.welch_t(base, var), fq.mann_whitney(base, var)
    diff = statistics.fmean(var) - statistics.fmean(base)
    ci = None
    if welch is not None and welch.df is not None:
        from scipy import stats  # type: ignore[import-untyped, unused-ignore]

        se = math.sqrt(statistics.variance(base) / len(base) + statistics.variance(var) / len(var))
        half = float(stats.t.ppf((1 + opts.confidence) / 2, welch.df)) * se
        ci = [diff - half, diff + half]
    primary = welch if opts.test == "t" else mw
    return {
        "design": "unpaired",
        "n": min(len(base), len(var)),
        "n_baseline": len(base),
        "n_variant": len(var),
        "baseline_mean": statistics.fmean(base),
        "variant_mean": statistics.fmean(var),
        "mean_difference": diff,
        "ci": ci,
        "ci_level": opts.confidence,
        "ci_method": "Welch t interval of the difference of means",
        "welch_t": welch.to_dict() if welch else None,
        "mann_whitney": mw.to_dict() if mw else None,
        "cohens_d": fq.cohens_d_pooled(base, var),
        "cohens_d_kind": "d: difference of means / pooled SD",
        "cliffs_delta": fq.cliffs_delta(base, var),
        "test": primary.method if primary else None,
        "p_value": primary.p_value if primary else None,
    }


def _power(out: dict[str, Any], opts: SignificanceOptions) -> dict[str, Any]:
    """Rows needed to detect the planning effect ``min_effect``, and a warning when there are fewer."""
    effect = opts.min_effect
    design: Design = "paired" if out["design"] == "paired" else "two_sample"
    needed = required_n(effect, opts.power, opts.alpha, design)
    unit = "pairs" if design == "paired" else "rows per experiment"
    power: dict[str, Any] = {
        "target": opts.power,
        "effect": effect,
        "effect_kind": "d_z" if design == "paired" else "d",
        "effect_source": "min_effect (planning effect, not the observed one)",
        "n_required": needed,
        "warning": None,
    }
    n = out["n"] if design == "paired" else min(out["n_baseline"], out["n_variant"])
    if needed is None or n < needed:
        power["warning"] = (
            f"{n} {unit} is below the {needed or 'more than 10 million'} needed for {opts.power:.0%} power "
            f"to detect an effect of {effect:.3g} ({power['effect_kind']}, the min_effect option); "
            "a non-significant result is weak evidence of no difference"
        )
    return power


def analyse(base: Mapping[str, float], var: Mapping[str, float], opts: SignificanceOptions) -> dict[str, Any]:
    """Compare one criterion's scores by row id; paired when enough ids match, else unpaired (before Holm)."""
    ids = [i for i in base if i in var]
    if opts.pairing == "auto" and len(ids) >= opts.min_samples:
        out = _paired(base, var, ids, opts)
    elif len(base) >= opts.min_samples and len(var) >= opts.min_samples:
        out = _unpaired(list(base.values()), list(var.values()), opts)
    else:
        return {
            "design": None,
            "n_baseline": len(base),
            "n_variant": len(var),
            "n_paired": len(ids),
            "p_value": None,
            "warning": f"too few scores to compare: at least {opts.min_samples} needed",
        }
    delta = out["cliffs_delta"]
    out["cliffs_label"] = fq.cliffs_label(delta) if delta is not None else None
    out["power"] = _power(out, opts)
    return out


def mcnemar_flags(base: Mapping[str, bool], var: Mapping[str, bool]) -> dict[str, Any] | None:
    """McNemar's test on the rows both experiments flagged; None when no row was flagged in both."""
    ids = [i for i in base if i in var]
    if not ids:
        return None
    lost = sum(1 for i in ids if base[i] and not var[i])
    gained = sum(1 for i in ids if not base[i] and var[i])
    res = fq.mcnemar(lost, gained)
    return {
        "n": len(ids),
        "baseline_pass_rate": sum(base[i] for i in ids) / len(ids),
        "variant_pass_rate": sum(var[i] for i in ids) / len(ids),
        "pass_to_fail": lost,
        "fail_to_pass": gained,
        **(res.to_dict() if res else {"statistic": None, "p_value": None, "df": None, "method": "no discordant pairs"}),
    }


def _direction(diff: float | None) -> str | None:
    return None if diff is None else "higher" if diff > 0 else "lower" if diff < 0 else "equal"


class ScoreSignificance:
    """Paired or unpaired tests, effect sizes, bootstrap interval and power per variant and criterion, Holm-adjusted."""

    name = "score_significance"
    Options = SignificanceOptions

    def __init__(self, options: SignificanceOptions) -> None:
        self.options = options

    def compare_all(
        self, baseline: ExperimentResult, variants: Sequence[ExperimentResult]
    ) -> dict[str, dict[str, Any]]:
        """Compare every variant, then adjust the primary and McNemar p-value families across all of them."""
        opts = self.options
        base_scores, base_flags = score_table(baseline, opts.source_field), flag_table(baseline, opts.flag_field)
        out: dict[str, dict[str, Any]] = {}
        cells: list[dict[str, Any]] = []
        exact: list[dict[str, Any]] = []
        for variant in variants:
            scores, flags = score_table(variant, opts.source_field), flag_table(variant, opts.flag_field)
            per: dict[str, Any] = {}
            for criterion in criteria_of([base_scores, scores], opts.criteria):
                cell = analyse(base_scores.get(criterion, {}), scores.get(criterion, {}), opts)
                if criterion in base_flags and criterion in flags:
                    cell["mcnemar"] = mcnemar_flags(base_flags[criterion], flags[criterion])
                    if cell["mcnemar"] is not None:
                        exact.append(cell["mcnemar"])
                per[criterion] = cell
                cells.append(cell)
            out[variant.name] = {"criteria": per, "alpha": opts.alpha, "correction": opts.correction}
        self._adjust(cells, "p_value")
        self._adjust(exact, "p_value")
        for cell in [*cells, *exact]:
            p = cell.get("p_adjusted")
            cell["significant"] = p is not None and p < opts.alpha
        for cell in cells:
            cell["direction"] = _direction(cell.get("mean_difference"))
        for cell in exact:  # McNemar: the change in pass rate
            cell["direction"] = _direction(cell["variant_pass_rate"] - cell["baseline_pass_rate"])
        return out

    def _adjust(self, cells: list[dict[str, Any]], key: str) -> None:
        raw = [cell.get(key) for cell in cells]
        adjusted = fq.holm(raw) if self.options.correction == "holm" else raw
        for cell, p in zip(cells, adjusted, strict=True):
            cell["p_adjusted"] = p
            cell["family_size"] = sum(1 for q in raw if q is not None)
