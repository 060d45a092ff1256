"""Bayesian comparisons with stated priors and exact or numerically integrated posteriors (no Monte Carlo).

Models:

* **Paired differences** d_i ~ Normal(μ, σ²) with the standard noninformative prior p(μ, σ²) ∝ 1/σ².
  The marginal posterior of μ is Student-t with n - 1 degrees of freedom, location d̄ and scale s/√n
  (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §3.2).
* **Two independent groups**: the same model and prior for each group separately; the posterior of
  μ_variant - μ_baseline is the difference of two independent Student-t variables (the Behrens-Fisher
  distribution), whose CDF is computed by numerical integration.
* **Pass rates**: Binomial likelihood with Beta(1, 1) priors, so p ~ Beta(1 + passes, 1 + fails);
  P(p_variant > p_baseline) is the exact finite sum of Miller (2015), "Formulas for Bayesian A/B testing".
* **Paired pass rates**: a Dirichlet(1, 1, 1, 1) posterior on the four paired cells; the change in
  pass rate is the difference of the two discordant shares (:func:`paired_beta_difference`).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Posterior",
    "beta_difference",
    "paired_beta_difference",
    "paired_posterior",
    "prob_beta_greater",
    "unpaired_posterior",
]

PAIRED_PRIOR = "p(mu, sigma^2) ∝ 1/sigma^2 on the paired differences (noninformative)"
UNPAIRED_PRIOR = "p(mu, sigma^2) ∝ 1/sigma^2 for each group independently (noninformative)"
BETA_PRIOR = "Beta(1, 1) on each pass rate"
PAIRED_BETA_PRIOR = "Dirichlet(1, 1, 1, 1) on the paired cells (both pass, pass to fail, fail to pass, both fail)"
_NODES = 512


@dataclass(frozen=True)
class Posterior:
    """The posterior of variant minus baseline.

    Attributes:
        mean: posterior mean (or location) of the difference.
        prob_variant_better: posterior probability that the difference is above zero.
        credible_interval: equal-tailed interval holding ``credibility`` of the posterior mass.
        credibility: e.g. 0.95.
        model: the likelihood and posterior, in words.
        prior: the prior, in words.

    """

    mean: float
    prob_variant_better: float
    credible_interval: tuple[float, float]
    credibility: float
    model: str
    prior: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "mean": self.mean,
            "prob_variant_better": self.prob_variant_better,
            "credible_interval": list(self.credible_interval),
            "credibility": self.credibility,
            "model": self.model,
            "prior": self.prior,
        }


def paired_posterior(diffs: Sequence[float], credibility: float = 0.95) -> Posterior | None:
    """Posterior of the mean paired difference: t(n - 1, d̄, s/√n). None below two pairs or without spread."""
    n = len(diffs)
    if n < 2 or max(diffs) == min(diffs):
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    dist = stats.t(n - 1, loc=statistics.fmean(diffs), scale=statistics.stdev(diffs) / math.sqrt(n))
    tail = (1 - credibility) / 2
    return Posterior(
        mean=float(dist.mean()),
        prob_variant_better=float(dist.sf(0.0)),
        credible_interval=(float(dist.ppf(tail)), float(dist.ppf(1 - tail))),
        credibility=credibility,
        model=f"Normal paired differences; marginal posterior of the mean is Student-t with {n - 1} df",
        prior=PAIRED_PRIOR,
    )


@functools.cache
def _unit_nodes() -> tuple[Any, Any]:
    """Gauss-Legendre nodes and weights moved to (0, 1); computed once (an eigenvalue problem of size 512)."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    nodes, weights = np.polynomial.legendre.leggauss(_NODES)
    return (nodes + 1) / 2, weights / 2


def _difference(
    base: Any, variant: Any, credibility: float, variant_cdf: Callable[[Any], Any] | None = None
) -> tuple[float, tuple[float, float]]:
    """P(variant - base > 0) and an equal-tailed interval of the difference, by numerical integration.

    CDF(z) = P(variant - base <= z) = integral over u in (0, 1) of F_variant(F_base^-1(u) + z) du, computed
    with 512-point Gauss-Legendre quadrature (the integrand is bounded and smooth); quantiles by Brent's method.
    ``variant_cdf``, if given, is the same function as ``variant.cdf`` without scipy's per-call checks
    (Brent's method calls it a few dozen times).
    """
    import numpy as np  # type: ignore[import-untyped, unused-ignore]
    from scipy import optimize  # type: ignore[import-untyped, unused-ignore]

    u, w = _unit_nodes()
    x = base.ppf(u)
    f = variant_cdf or variant.cdf

    def cdf(z: float) -> float:
        return min(1.0, max(0.0, float(np.dot(w, f(x + z)))))

    lo = float(variant.ppf(1e-9) - base.ppf(1 - 1e-9))
    hi = float(variant.ppf(1 - 1e-9) - base.ppf(1e-9))

    def quantile(q: float) -> float:
        return float(optimize.brentq(lambda z: cdf(z) - q, lo, hi, xtol=1e-12))

    tail = (1 - credibility) / 2
    return 1.0 - cdf(0.0), (quantile(tail), quantile(1 - tail))


def unpaired_posterior(
    baseline: Sequence[float], variant: Sequence[float], credibility: float = 0.95
) -> Posterior | None:
    """Posterior of μ_variant - μ_baseline for independent groups (Behrens-Fisher), by numerical integration."""
    if len(baseline) < 2 or len(variant) < 2:
        return None
    if max(baseline) == min(baseline) or max(variant) == min(variant):
        return None
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    def marginal(values: Sequence[float]) -> Any:
        n = len(values)
        return stats.t(n - 1, loc=statistics.fmean(values), scale=statistics.stdev(values) / math.sqrt(n))

    from scipy.special import stdtr  # type: ignore[import-untyped, unused-ignore]

    base, var = marginal(baseline), marginal(variant)
    df, (loc, scale) = len(variant) - 1, (var.kwds["loc"], var.kwds["scale"])
    prob, interval = _difference(base, var, credibility, lambda x: stdtr(df, (x - loc) / scale))
    return Posterior(
        mean=statistics.fmean(variant) - statistics.fmean(baseline),
        prob_variant_better=prob,
        credible_interval=interval,
        credibility=credibility,
        model="Normal per group; posterior of the difference of means is Behrens-Fisher (difference of two t)",
        prior=UNPAIRED_PRIOR,
    )


def prob_beta_greater(a_variant: float, b_variant: float, a_base: float, b_base: float) -> float:
    """P(p_variant > p_base) for p_variant ~ Beta(a_variant, b_variant), p_base ~ Beta(a_base, b_base).

    Miller's exact sum, which needs an integer ``a_variant``:
    Σ_{i=0}^{a_v-1} B(a_b + i, b_b + b_v) / ((b_v + i) · B(1 + i, b_v) · B(a_b, b_b)).
    """
    from scipy.special import betaln  # type: ignore[import-untyped, unused-ignore]

    if a_variant != int(a_variant):
        raise ValueError("the exact sum needs an integer first parameter for the variant")
    total = 0.0
    for i in range(int(a_variant)):
        total += math.exp(
            betaln(a_base + i, b_base + b_variant)
            - math.log(b_variant + i)
            - betaln(1 + i, b_variant)
            - betaln(a_base, b_base)
        )
    return min(1.0, max(0.0, total))


def beta_difference(
    passes_base: int, n_base: int, passes_variant: int, n_variant: int, credibility: float = 0.95
) -> Posterior:
    """Posterior of p_variant - p_baseline with Beta(1, 1) priors on each pass rate."""
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    ab, bb = 1 + passes_base, 1 + n_base - passes_base
    av, bv = 1 + passes_variant, 1 + n_variant - passes_variant
    import numpy as np  # type: ignore[import-untyped, unused-ignore]
    from scipy.special import betainc  # type: ignore[import-untyped, unused-ignore]

    def variant_cdf(x: Any) -> Any:
        return betainc(av, bv, np.clip(x, 0.0, 1.0))

    _, interval = _difference(stats.beta(ab, bb), stats.beta(av, bv), credibility, variant_cdf)
    return Posterior(
        mean=av / (av + bv) - ab / (ab + bb),
        prob_variant_better=prob_beta_greater(av, bv, ab, bb),
        credible_interval=interval,
        credibility=credibility,
        model=f"Binomial pass counts; posteriors Beta({ab}, {bb}) baseline and Beta({av}, {bv}) variant",
        prior=BETA_PRIOR,
    )


def paired_beta_difference(pass_to_fail: int, fail_to_pass: int, n: int, credibility: float = 0.95) -> Posterior:
    """Posterior of the change in pass rate over ``n`` paired rows, Dirichlet(1, 1, 1, 1) on the four cells.

    With the cell shares (both pass, pass to fail, fail to pass, both fail), the change is
    D = pi_fp - pi_pf = S (2R - 1), where S = pi_pf + pi_fp ~ Beta(2 + b + c, 2 + n - b - c) and
    R = pi_fp / S ~ Beta(1 + c, 1 + b) are independent (the Dirichlet's aggregation and neutrality).
    So P(D > 0) = P(R > 1/2) exactly, and the CDF of D is one integral over S (Gauss-Legendre).
    """
    import numpy as np  # type: ignore[import-untyped, unused-ignore]
    from scipy import optimize, stats  # type: ignore[import-untyped, unused-ignore]
    from scipy.special import betainc  # type: ignore[import-untyped, unused-ignore]

    b, c = pass_to_fail, fail_to_pass
    a_s, b_s, a_r, b_r = 2 + b + c, 2 + n - b - c, 1 + c, 1 + b
    u, w = _unit_nodes()
    s = stats.beta(a_s, b_s).ppf(u)

    def cdf(z: float) -> float:
        return min(1.0, max(0.0, float(np.dot(w, betainc(a_r, b_r, np.clip((z / s + 1) / 2, 0.0, 1.0))))))

    def quantile(q: float) -> float:
        return float(optimize.brentq(lambda z: cdf(z) - q, -1.0, 1.0, xtol=1e-12))

    tail = (1 - credibility) / 2
    return Posterior(
        mean=a_s / (a_s + b_s) * (2 * a_r / (a_r + b_r) - 1),
        prob_variant_better=float(1 - betainc(a_r, b_r, 0.5)),
        credible_interval=(quantile(tail), quantile(1 - tail)),
        credibility=credibility,
        model=f"Multinomial paired pass/fail cells ({b} pass to fail, {c} fail to pass of {n} pairs)",
        prior=PAIRED_BETA_PRIOR,
    )
