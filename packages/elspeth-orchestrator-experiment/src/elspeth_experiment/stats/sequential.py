"""The mixture sequential probability ratio test (mSPRT) of a mean paired difference: always-valid p-values.

Looking at a fixed-n p-value after every row and stopping at the first p < alpha rejects a true null
far more often than alpha. The mSPRT (Robbins 1970; Johari, Pekelis and Walsh 2017, "Always valid
inference") mixes the likelihood ratio of N(theta, sigma^2) against N(0, sigma^2) over a normal prior
theta ~ N(0, tau^2):

    Lambda_n = sqrt(sigma^2 / (sigma^2 + n tau^2)) exp(n^2 tau^2 mean^2 / (2 sigma^2 (sigma^2 + n tau^2)))

Under the null Lambda_n is a martingale of mean 1, so by Ville's inequality P(sup_n Lambda_n >= 1/alpha)
<= alpha: stopping at the first n with Lambda_n >= 1/alpha keeps the error rate at alpha however often
one looks, and p_n = min(1, 1 / max_k Lambda_k) is an always-valid p-value. sigma^2 is estimated from the
differences seen so far (a plug-in, valid after a burn-in of ``min_rows``; tests/test_sequential.py
simulates the error rate), and tau is given in units of sigma.
"""

from __future__ import annotations

from typing import Any

__all__ = ["msprt_log_lr"]


def msprt_log_lr(n: Any, mean: Any, variance: Any, tau: float) -> Any:
    """The log of Lambda_n for ``n`` differences of ``mean`` and ``variance``, mixing SD ``tau`` sigma (or arrays)."""
    import numpy as np  # type: ignore[import-untyped, unused-ignore]

    t2 = tau * tau * variance
    spread = variance + n * t2
    return 0.5 * np.log(variance / spread) + n * n * t2 * mean * mean / (2 * variance * spread)
