"""``score_bayes``: the posterior probability that a variant beats the baseline, with credible intervals.

Means use a normal model with the noninformative prior p(μ, σ²) ∝ 1/σ²: on the paired differences
of the rows both experiments scored (a Student-t posterior; the design of a suite, as in
``score_significance``, whose row rule and ``rows`` block it shares), or on each group with
``pairing: never`` (a Behrens-Fisher posterior). Paired pass rates use a Dirichlet(1, 1, 1, 1)
posterior on the four paired cells, independent ones Beta(1, 1) priors; a missing flag is missing.
See :mod:`elspeth_experiment.stats.bayes` for the formulas; nothing is sampled.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth_experiment.plugins._rows import Arm, Pair, accounting, arm_of
from elspeth_experiment.plugins._scores import criteria_of
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats.bayes import (
    beta_difference,
    paired_beta_difference,
    paired_posterior,
    unpaired_posterior,
)

__all__ = ["ScoreBayes"]


class ScoreBayes:
    """Posterior probability that the variant beats the baseline (mean score and pass rate), with credible intervals."""

    name = "score_bayes"

    class Options(BaseModel):
        """Options of ``score_bayes``."""

        model_config = ConfigDict(extra="forbid")

        criteria: list[str] | None = Field(None, description="criteria to compare (default: every one scored)")
        source_field: str = Field("scores", description="the record metric holding scores per criterion")
        flag_field: str = Field("score_flags", description="the record metric holding pass flags per criterion")
        credibility: float = Field(0.95, ge=0.5, le=0.999, description="mass of the equal-tailed credible interval")
        min_samples: int = Field(2, ge=2, description="fewest pairs (or values per group) for a posterior")
        pairing: str = Field(
            "by_id",
            pattern="^(by_id|auto|never)$",
            description="by_id: paired on the rows both experiments scored, matched by row id (auto is its old "
            "name); never: independent samples",
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    def compare(self, baseline: ExperimentResult, variant: ExperimentResult) -> dict[str, Any]:
        """Posteriors per criterion, on the rows the same rule as ``score_significance`` keeps."""
        opts = self.options
        base = arm_of(baseline, opts.source_field, opts.flag_field)
        var = arm_of(variant, opts.source_field, opts.flag_field)
        pair = Pair(base, var) if opts.pairing != "never" else None
        out: dict[str, Any] = {}
        for criterion in criteria_of([base.scores, var.scores], opts.criteria):
            cell = self._means(pair, base, var, criterion)
            cell["pass_rate"] = self._rates(pair, base, var, criterion)
            out[criterion] = cell
        return {"criteria": out}

    def _means(self, pair: Pair | None, base: Arm, var: Arm, criterion: str) -> dict[str, Any]:
        import numpy as np  # type: ignore[import-untyped, unused-ignore]

        opts = self.options
        if pair is not None:
            b_all, v_all = pair.columns(criterion)
            b_have, v_have = ~np.isnan(b_all), ~np.isnan(v_all)
            both = b_have & v_have
            cell: dict[str, Any] = {"design": "paired", "n": int(both.sum())}
            cell["rows"] = accounting(pair, base, var, b_have, v_have)
            enough = cell["n"] >= opts.min_samples
            posterior = paired_posterior((v_all[both] - b_all[both]).tolist(), opts.credibility) if enough else None
        else:
            b = base.scores.get(criterion, np.full(0, np.nan))
            v = var.scores.get(criterion, np.full(0, np.nan))
            b, v = b[~np.isnan(b)], v[~np.isnan(v)]
            cell = {"design": "unpaired", "n_baseline": len(b), "n_variant": len(v)}
            enough = min(len(b), len(v)) >= opts.min_samples
            posterior = unpaired_posterior(b.tolist(), v.tolist(), opts.credibility) if enough else None
        if not enough:
            cell["warning"] = f"too few scores: at least {opts.min_samples} needed"
        elif posterior is None:
            cell["warning"] = "the scores have no spread, so the posterior is degenerate"
        cell["mean_difference"] = posterior.to_dict() if posterior else None
        return cell

    def _rates(self, pair: Pair | None, base: Arm, var: Arm, criterion: str) -> dict[str, Any] | None:
        if criterion not in base.flags or criterion not in var.flags:
            return None
        level = self.options.credibility
        if pair is None:  # independent samples: each experiment's own flagged rows
            bf, vf = base.flags[criterion], var.flags[criterion]
            nb, nv = int((bf >= 0).sum()), int((vf >= 0).sum())
            if not nb or not nv:
                return None
            post = beta_difference(int((bf == 1).sum()), nb, int((vf == 1).sum()), nv, level)
            return {"design": "unpaired", "n_baseline": nb, "n_variant": nv, **post.to_dict()}
        bf, vf = pair.columns(criterion, flags=True)
        both = (bf >= 0) & (vf >= 0)
        n = int(both.sum())
        if not n:
            return None
        lost, gained = int(((bf == 1) & (vf == 0) & both).sum()), int(((bf == 0) & (vf == 1) & both).sum())
        post = paired_beta_difference(lost, gained, n, level)
        return {"design": "paired", "n": n, "pass_to_fail": lost, "fail_to_pass": gained, **post.to_dict()}
