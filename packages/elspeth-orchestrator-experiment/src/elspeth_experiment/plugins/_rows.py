"""Every row of a comparison accounted for: which rows a test used, which it dropped and why.

The rule, the same for every test of one comparison: the primary analysis is paired on the rows both
experiments scored (matched by row id, which is the design of a suite: every experiment runs over the
same rows); a row that failed, finished without a score, or was never run in either experiment is
dropped from it and counted, per experiment and reason. An intention-to-treat line repeats the test on
every row either experiment took, with a failed or unscored row counted as the worst score (or as a
fail, for pass flags), so a variant cannot look better by failing on the rows it would have scored low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from elspeth_experiment.protocols import ExperimentResult

__all__ = ["Arm", "accounting", "arm_of", "stop_warning"]


@dataclass
class Arm:
    """One experiment's rows for one comparison: scores and flags per criterion, and the rows without them."""

    name: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    flags: dict[str, dict[str, bool]] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_run: int = 0
    early_stop: dict[str, Any] | None = None

    def seen(self) -> list[str]:
        """Every row id this experiment took (finished or failed), in order."""
        return [*self.finished, *self.failed]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def arm_of(result: ExperimentResult, source_field: str, flag_field: str) -> Arm:
    """Read an experiment's scores and flags; a flag whose score is missing is missing too, not a fail."""
    arm = Arm(result.name, not_run=result.rows_not_run, early_stop=result.early_stop)
    for record in result.records:
        arm.finished.append(record.row_id)
        scores = record.metrics.get(source_field) or {}
        for criterion, value in scores.items():
            column = arm.scores.setdefault(criterion, {})
            number = _number(value)
            if number is not None:
                column[record.row_id] = number
        for criterion, flag in (record.metrics.get(flag_field) or {}).items():
            flags = arm.flags.setdefault(criterion, {})
            if criterion not in scores or _number(scores[criterion]) is not None:
                flags[record.row_id] = bool(flag)
    arm.failed = [failure.row_id for failure in result.failures]
    return arm


def _dropped(arm: Arm, have: dict[str, Any], used: int, other_has: dict[str, Any] | None) -> dict[str, Any]:
    """How many of ``arm``'s rows the test left out, by reason."""
    failed = len(arm.failed)
    missing = sum(1 for i in arm.finished if i not in have)
    out: dict[str, Any] = {"scored": len(have), "used": used, "failed": failed, "missing_score": missing}
    out["not_run"] = arm.not_run
    if other_has is not None:
        out["unpaired"] = sum(1 for i in have if i not in other_has)
    return out


def accounting(
    base: Arm, var: Arm, base_have: dict[str, Any], var_have: dict[str, Any], paired: bool, used: int
) -> dict[str, Any]:
    """The ``rows`` block of a comparison: the rule, the rows used, and the rows dropped per arm and why."""
    rule = (
        "paired on the rows both experiments scored, matched by row id; a row failed, unscored or not run "
        "in either is left out (unpaired: its partner is)"
        if paired
        else "unpaired: every row each experiment scored; failed, unscored and unrun rows left out"
    )
    return {
        "rule": rule,
        "used": used,
        "baseline": _dropped(base, base_have, used if paired else len(base_have), var_have if paired else None),
        "variant": _dropped(var, var_have, used if paired else len(var_have), base_have if paired else None),
    }


def stop_warning(base: Arm, var: Arm) -> str | None:
    """The sentence a comparison carries when an early stop cut either experiment short, else None."""
    stopped = [arm for arm in (base, var) if arm.early_stop]
    if not stopped:
        return None
    names = ", ".join(f"'{arm.name}' ({(arm.early_stop or {}).get('reason', 'stopped early')})" for arm in stopped)
    return (
        f"stopped early by a rule that watched the data: {names}; the fixed-n p-values and intervals of this "
        "comparison do not hold (the sample size depended on the results)"
    )
