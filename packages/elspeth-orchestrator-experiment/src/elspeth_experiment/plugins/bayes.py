"""``score_bayes``: the posterior probability that a variant beats the baseline, with credible intervals.

Means use a normal model with the noninformative prior p(μ, σ²) ∝ 1/σ²: on the paired differences
when row ids match (a Student-t posterior), else on each group (a Behrens-Fisher posterior). Pass rates
use Beta(1, 1) priors. See :mod:`elspeth_experiment.stats.bayes` for the formulas; nothing is sampled.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth_experiment.plugins._scores import criteria_of, flag_table, score_table
from elspeth_experiment.protocols import ExperimentResult
from elspeth_experiment.stats.bayes import beta_difference, paired_posterior, unpaired_posterior

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
            "auto", pattern="^(auto|never)$", description="auto: pair rows by id when enough match; never: unpaired"
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    def compare(self, baseline: ExperimentResult, variant: ExperimentResult) -> dict[str, Any]:
        """Posteriors per criterion; a criterion without enough data says so."""
        opts = self.options
        base_scores, var_scores = score_table(baseline, opts.source_field), score_table(variant, opts.source_field)
        base_flags, var_flags = flag_table(baseline, opts.flag_field), flag_table(variant, opts.flag_field)
        out: dict[str, Any] = {}
        for criterion in criteria_of([base_scores, var_scores], opts.criteria):
            b, v = base_scores.get(criterion, {}), var_scores.get(criterion, {})
            ids = [i for i in b if i in v]
            cell: dict[str, Any] = {}
            posterior = None
            if opts.pairing == "auto" and len(ids) >= opts.min_samples:
                posterior = paired_posterior([v[i] - b[i] for i in ids], opts.credibility)
                cell.update(design="paired", n=len(ids))
            elif len(b) >= opts.min_samples and len(v) >= opts.min_samples:
                posterior = unpaired_posterior(list(b.values()), list(v.values()), opts.credibility)
                cell.update(design="unpaired", n_baseline=len(b), n_variant=len(v))
            else:
                cell.update(design=None, warning=f"too few scores: at least {opts.min_samples} needed")
            cell["mean_difference"] = posterior.to_dict() if posterior else None
            if posterior is None and cell["design"] is not None:
                cell["warning"] = "the scores have no spread, so the posterior is degenerate"
            cell["pass_rate"] = self._rates(base_flags.get(criterion), var_flags.get(criterion))
            out[criterion] = cell
        return {"criteria": out}

    def _rates(self, base: dict[str, bool] | None, var: dict[str, bool] | None) -> dict[str, Any] | None:
        if not base or not var:
            return None
        post = beta_difference(sum(base.values()), len(base), sum(var.values()), len(var), self.options.credibility)
        return {"n_baseline": len(base), "n_variant": len(var), **post.to_dict()}
