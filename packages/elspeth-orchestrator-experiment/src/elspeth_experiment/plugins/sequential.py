"""``sequential``: an early stop on the variant's difference from the baseline that holds under monitoring.

It runs the mSPRT of :mod:`elspeth_experiment.stats.sequential`, whose error rate holds however often it looks.

The baseline runs first; the plugin on a variant is handed the finished baseline (``begin``), pairs each
finished row with the baseline's row of the same id, and stops the variant when the always-valid
p-value of the mean paired difference falls below ``alpha``. On the baseline itself it never stops.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import Record, inline
from elspeth_experiment.plugins.early_stop import lookup
from elspeth_experiment.protocols import ExperimentResult

__all__ = ["Sequential"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class Sequential:
    """Stops a variant once the mSPRT's always-valid p-value of its mean paired difference is below alpha."""

    name = "sequential"

    class Options(BaseModel):
        """Options of ``sequential``."""

        model_config = ConfigDict(extra="forbid")

        metric: str = Field(description="dotted path into each record's metrics, e.g. `scores.default`")
        alpha: float = Field(0.05, gt=0, lt=0.5, description="error rate that holds however often the test looks")
        tau: float = Field(
            0.3, gt=0, description="SD of the mixing prior of the effect, in SDs of the paired differences"
        )
        min_rows: int = Field(20, ge=3, description="pairs before the test may stop (the variance's burn-in)")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._baseline: dict[str, float] | None = None
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.max_log_lr = -math.inf

    @inline
    def begin(self, baseline: ExperimentResult | None) -> None:
        """Take the finished baseline's values of ``metric`` by row id (None: this is the baseline)."""
        if baseline is None:
            return
        values = ((r.row_id, _number(lookup(r.metrics, self.options.metric))) for r in baseline.records)
        self._baseline = {row_id: v for row_id, v in values if v is not None}

    @property
    def always_valid_p(self) -> float:
        """The always-valid p-value so far: min(1, 1 / max Lambda)."""
        return 1.0 if self.max_log_lr == -math.inf else min(1.0, math.exp(-self.max_log_lr))

    @inline
    def check(self, record: Record) -> dict[str, Any] | None:
        """Pair the row with the baseline's and stop once the always-valid p is below alpha."""
        if self._baseline is None or record.row_id not in self._baseline:
            return None
        value = _number(lookup(record.metrics, self.options.metric))
        if value is None:
            return None
        diff = value - self._baseline[record.row_id]
        self._n += 1
        delta = diff - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (diff - self._mean)
        return self._decide()

    def _decide(self) -> dict[str, Any] | None:
        from elspeth_experiment.stats.sequential import msprt_log_lr

        opts, n = self.options, self._n
        if n < opts.min_rows:
            return None
        variance = self._m2 / (n - 1)
        if variance <= 0:
            self.max_log_lr = math.inf if self._mean != 0 else self.max_log_lr  # every pair differs equally
        else:
            self.max_log_lr = max(self.max_log_lr, float(msprt_log_lr(n, self._mean, variance, opts.tau)))
        p = self.always_valid_p
        if p >= opts.alpha:
            return None
        return {
            "reason": f"mSPRT on the paired difference of {opts.metric}: always-valid p = {p:.3g} < {opts.alpha:g} "
            f"after {n} pairs (mean difference {self._mean:+.4g})",
            "method": f"mSPRT (normal mixture, tau = {opts.tau:g} SD)",
            "valid_under_monitoring": True,
            "always_valid_p": p,
            "alpha": opts.alpha,
            "pairs": n,
            "mean_difference": self._mean,
            "metric": opts.metric,
        }
