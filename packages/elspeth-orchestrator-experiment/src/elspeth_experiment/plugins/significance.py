"""``score_significance``: frequentist comparison of every variant with the baseline, Holm-corrected.

Per variant and criterion:

* **rows** (``rows``): the design is paired by row id (a suite runs every experiment over the same
  rows), so the test uses the rows both experiments scored, and states per experiment how many rows
  it dropped and why (failed, finished without a score, not run, or scored here but not there). An
  ``itt`` line repeats the test on every row either experiment took, a failed or unscored row counted
  as the worst score: a variant that fails on the rows it would score low cannot look better unseen.
* **one method** (``test``, ``p_value``, ``ci``): the studentized bootstrap below ``bootstrap_below``
  rows (the percentile bootstrap covers 81% at n = 10), the t test and its interval from there on, or
  the rank test; the interval is the set of differences the same test keeps, so at ``confidence =
  1 - alpha`` (the default) they cannot contradict each other. A constant non-zero difference is a
  certain effect (p = 0); identical arms are p = 1 and stay in the Holm family.
* the other tests and effect sizes for reference (paired t / Wilcoxon or Welch / Mann-Whitney,
  Cohen's d, Cliff's delta), and the sample size needed for ``power`` at ``min_effect`` (never the
  observed effect: that is the post-hoc power fallacy);
* **pass rates** (``mcnemar``) on the paired rows' flags: the exact conditional McNemar test and its
  Clopper-Pearson interval of the difference, Wilson intervals per experiment, the same row rule;
* **equivalence** (``equivalence``, with ``margin``): TOST and the "no worse than by more than the
  margin" claim, by the same method as the test.

* **clustered** (with ``epochs: K`` > 1 or ``cluster_by``): every epoch's score regressed on the arm,
  the standard error clustered by row (or by the ``cluster_by`` column), t with clusters - 1 df.

The primary p-values over all variants x criteria form one family (Holm), the pass-rate tests a
second, the "no worse than" claims a third, the clustered lines a fourth. That is why the plugin
implements ``compare_all``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth_experiment.plugins._clustered import clustered, wants_clustering
from elspeth_experiment.plugins._rows import Arm, Pair, accounting, arm_from_column, arm_of, stop_warning
from elspeth_experiment.plugins._scores import criteria_of
from elspeth_experiment.plugins._sensitivity import equivalence, intention_to_treat, pass_rates, primary
from elspeth_experiment.protocols import ExperimentResult, SetupContext
from elspeth_experiment.stats import frequentist as fq
from elspeth_experiment.stats.power import Design, required_n

__all__ = ["ScoreSignificance", "SignificanceOptions", "analyse", "analyse_arms"]


class SignificanceOptions(BaseModel):
    """Options of ``score_significance``."""

    model_config = ConfigDict(extra="forbid")

    criteria: list[str] | None = Field(None, description="criteria to compare (default: every one scored)")
    source_field: str = Field("scores", description="the record metric holding scores per criterion")
    flag_field: str = Field("score_flags", description="the record metric holding pass flags, for McNemar")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance level, applied to Holm-adjusted p-values")
    test: Literal["auto", "t", "bootstrap", "rank"] = Field(
        "auto",
        description="the method of the test and its interval: auto (studentized bootstrap below bootstrap_below "
        "rows, t from there on), t (paired t / Welch), bootstrap (studentized), rank (Wilcoxon / Mann-Whitney, "
        "no interval)",
    )
    bootstrap_below: int = Field(50, ge=2, description="with test auto, the studentized bootstrap below this many rows")
    pairing: Literal["by_id", "auto", "never"] = Field(
        "by_id",
        description="by_id: paired on the rows both experiments scored, matched by row id (auto is the old name "
        "of by_id); never: independent samples, for experiments over different rows",
    )
    correction: Literal["holm", "none"] = Field("holm", description="multiple-comparison correction")
    min_samples: int = Field(5, ge=2, description="fewest rows used (pairs, or values per group) to test at all")
    confidence: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="level of the interval of the difference (default 1 - alpha, the level "
        "at which the interval and the test agree)",
    )
    bootstrap_resamples: int = Field(10_000, ge=100, le=1_000_000, description="bootstrap resamples")
    seed: int = Field(0, description="bootstrap seed; the same seed and data give the same interval")
    worst_score: float | None = Field(
        None,
        description="the score a failed or unscored row counts as in the intention-to-treat line "
        "(default: the worst score either experiment gave on the criterion)",
    )
    higher_is_better: bool = Field(True, description="direction of the scores: decides the worst score and 'no worse'")
    margin: float | None = Field(
        None,
        gt=0,
        description="equivalence margin in score units: test that the variant is no worse than the "
        "baseline by more than this (non-inferiority), and TOST equivalence within plus or minus it",
    )
    cluster_by: str | None = Field(
        None,
        description="a column whose rows are not independent (one document, one product): the clustered line "
        "clusters its standard errors by it (default: by row, when the experiments ran epochs > 1)",
    )
    power: float = Field(0.8, gt=0, lt=1, description="target power for the sample-size warning")
    min_effect: float = Field(
        0.3,
        gt=0,
        description="smallest standardised effect worth detecting, for the sample-size warning: Cohen's d_z "
        "(mean difference / SD of differences) when paired, d (pooled SD) when unpaired; 0.3 is between "
        "Cohen's small (0.2) and medium (0.5). Never the observed effect: that is post-hoc power",
    )

    @property
    def level(self) -> float:
        """The interval's level: ``confidence``, or ``1 - alpha`` when unset."""
        return self.confidence if self.confidence is not None else 1 - self.alpha


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


def _too_few(design: str, rows: dict[str, Any], used: int, opts: SignificanceOptions) -> dict[str, Any]:
    what = "rows scored in both experiments" if design == "paired" else "rows scored per experiment"
    return {
        "design": design,
        "n": used,
        "rows": rows,
        "p_value": None,
        "warning": f"too few scores to compare: {used} {what}, at least {opts.min_samples} needed",
    }


def _own(arm: Arm, criterion: str) -> Any:
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    return arm.scores.get(criterion, np.full(len(arm.ids), np.nan))


def analyse_arms(pair: Pair | None, base: Arm, var: Arm, criterion: str, opts: SignificanceOptions) -> dict[str, Any]:
    """Compare one criterion of two experiments (before Holm), every row accounted for in ``rows``.

    ``pair`` (the two arms on one row order) makes the comparison paired by row id; None, unpaired.
    """
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    if pair is not None:
        b_all, v_all = pair.columns(criterion)
        b_have, v_have = ~np.isnan(b_all), ~np.isnan(v_all)
        rows = accounting(pair, base, var, b_have, v_have)
        both = b_have & v_have
        if rows["used"] < opts.min_samples:
            out = _too_few("paired", rows, rows["used"], opts)
            if not pair.shared_any:
                out["warning"] += "; no row id is in both experiments: set pairing: never for independent samples"
            return out
        b, v = b_all[both], v_all[both]
    else:
        b_all, v_all = _own(base, criterion), _own(var, criterion)
        b_have, v_have = ~np.isnan(b_all), ~np.isnan(v_all)
        rows = accounting(None, base, var, b_have, v_have)
        if min(int(b_have.sum()), int(v_have.sum())) < opts.min_samples:
            return _too_few("unpaired", rows, min(int(b_have.sum()), int(v_have.sum())), opts)
        b, v = b_all[b_have], v_all[v_have]
    out, p_at = primary(b, v, pair is not None, opts)
    out["rows"] = rows
    out["itt"] = intention_to_treat(b_all, v_all, pair is not None, opts, out)
    if opts.margin is not None:
        out["equivalence"] = equivalence(p_at, out, opts)
    delta = out["cliffs_delta"]
    out["cliffs_label"] = fq.cliffs_label(delta) if delta is not None else None
    out["power"] = _power(out, opts)
    warning = stop_warning(base, var)
    out["p_values_hold"] = warning is None
    if warning:
        out["warning"] = warning
    return out


def analyse(base: Mapping[str, float], var: Mapping[str, float], opts: SignificanceOptions) -> dict[str, Any]:
    """Compare two ``{row_id: score}`` columns, as :func:`analyse_arms` does with whole experiments."""
    arms = arm_from_column("base", dict(base), "score"), arm_from_column("var", dict(var), "score")
    pair = Pair(*arms) if opts.pairing != "never" else None
    return analyse_arms(pair, arms[0], arms[1], "score", opts)


def _direction(diff: float | None) -> str | None:
    return None if diff is None else "higher" if diff > 0 else "lower" if diff < 0 else "equal"


class ScoreSignificance:
    """Tests, intervals, effect sizes and power per variant and criterion, every row accounted for, Holm-adjusted."""

    name = "score_significance"
    Options = SignificanceOptions

    def __init__(self, options: SignificanceOptions) -> None:
        self.options = options

    def setup(self, setup: SetupContext) -> None:
        """Check that ``cluster_by`` names a column, so a typo stops the run before its first call."""
        column = self.options.cluster_by
        if column is not None and column not in setup.ctx.available_fields(setup.columns):
            setup.checker.add(
                (*setup.loc, "options", "cluster_by"),
                f"cluster_by column '{column}' is not a column of the data (columns: {', '.join(setup.columns)})",
            )

    def compare_all(
        self, baseline: ExperimentResult, variants: Sequence[ExperimentResult]
    ) -> dict[str, dict[str, Any]]:
        """Compare every variant, then adjust the primary, pass-rate and "no worse" families across all of them."""
        opts = self.options
        base = arm_of(baseline, opts.source_field, opts.flag_field)
        out: dict[str, dict[str, Any]] = {}
        cells: list[dict[str, Any]] = []
        exact: list[dict[str, Any]] = []
        no_worse: list[dict[str, Any]] = []
        grouped: list[dict[str, Any]] = []
        for variant in variants:
            arm = arm_of(variant, opts.source_field, opts.flag_field)
            pair = Pair(base, arm) if opts.pairing != "never" else None
            per: dict[str, Any] = {}
            for criterion in criteria_of([base.scores, arm.scores], opts.criteria):
                cell = analyse_arms(pair, base, arm, criterion, opts)
                if pair is not None and criterion in base.flags and criterion in arm.flags:
                    cell["mcnemar"] = pass_rates(pair, criterion, opts.level)
                    if cell["mcnemar"] is not None:
                        exact.append(cell["mcnemar"])
                if "equivalence" in cell:
                    no_worse.append(cell["equivalence"]["no_worse"])
                if wants_clustering(baseline, variant, opts.cluster_by):
                    cell["clustered"] = clustered(
                        baseline,
                        variant,
                        criterion,
                        source_field=opts.source_field,
                        cluster_by=opts.cluster_by,
                        paired=pair is not None,
                        level=opts.level,
                    )
                    if cell["clustered"] is not None:
                        grouped.append(cell["clustered"])
                per[criterion] = cell
                cells.append(cell)
            out[variant.name] = {"criteria": per, "alpha": opts.alpha, "correction": opts.correction}
        for family in (cells, exact, no_worse, grouped):
            self._adjust(family, "p_value")
        for cell in [*cells, *exact, *grouped]:
            p = cell.get("p_adjusted")
            cell["significant"] = p is not None and p < opts.alpha
        for claim in no_worse:
            claim["holds"] = claim["p_adjusted"] is not None and claim["p_adjusted"] < opts.alpha
        for cell in cells:
            cell["direction"] = _direction(cell.get("mean_difference"))
        for cell in exact:  # McNemar: the change in pass rate
            cell["direction"] = _direction(cell["difference"])
        return out

    def _adjust(self, cells: list[dict[str, Any]], key: str) -> None:
        raw = [cell.get(key) for cell in cells]
        adjusted = fq.holm(raw) if self.options.correction == "holm" else raw
        for cell, p in zip(cells, adjusted, strict=True):
            cell["p_adjusted"] = p
            cell["family_size"] = sum(1 for q in raw if q is not None)
