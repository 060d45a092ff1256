"""Quality gates (``gates:`` in the orchestrator's options): what a finished suite must meet for CI to pass.

Each gate reads figures the suite already computed, so a gate can never disagree with the report:
``mean`` and ``pass_rate`` read ``score_stats``'s output, ``no_regression`` a comparison plugin's
verdict (``significant`` with ``direction``), ``cost`` the rows' own ``cost`` metric (failed rows
included: they were paid for). The verdicts go to :attr:`elspeth.RunMetadata.gates`; ``elspeth run``
exits 3 when one fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import GateResult

if TYPE_CHECKING:
    from elspeth import Checker
    from elspeth_experiment.protocols import ExperimentResult

__all__ = ["Gate", "check_gates", "evaluate_gates"]

Loc = tuple[str | int, ...]
STATS = "score_stats"


class _GateBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="how CI output and JUnit name the gate (default: the rule in words)")


class _ScoreGate(_GateBase):
    at_least: float = Field(description="the lowest figure that passes")
    experiments: list[str] | None = Field(
        None, description="the experiments that must meet it (default: every experiment)"
    )
    criterion: str | None = Field(None, description="a criterion's figure (default: the overall one)")


class MeanGate(_ScoreGate):
    """Each named experiment's mean score (``score_stats``) is at least ``at_least``."""

    gate: Literal["mean"]


class PassRateGate(_ScoreGate):
    """Each named experiment's pass rate (``score_stats``, needs a ``threshold``) is at least ``at_least``."""

    gate: Literal["pass_rate"]
    at_least: float = Field(ge=0, le=1, description="the lowest pass rate that passes, from 0 to 1")


class RegressionGate(_GateBase):
    """No variant is significantly worse than the baseline, by a comparison plugin's own verdict."""

    gate: Literal["no_regression"]
    comparison: str = Field("score_significance", description="the comparison plugin whose verdict counts")
    variants: list[str] | None = Field(None, description="the variants checked (default: every variant)")
    worse: Literal["lower", "higher"] = Field("lower", description="which direction of a score is a regression")


class CostGate(_GateBase):
    """The suite's total cost (every experiment, failed rows included) is at most ``at_most``."""

    gate: Literal["cost"]
    at_most: float = Field(ge=0, description="the highest total cost that passes, in the price table's currency")


Gate = Annotated[MeanGate | PassRateGate | RegressionGate | CostGate, Field(discriminator="gate")]


def _describe(gate: Any) -> str:
    if gate.name:
        return str(gate.name)
    if isinstance(gate, MeanGate | PassRateGate):
        scope = f" ({', '.join(gate.experiments)})" if gate.experiments else ""
        what = gate.gate if gate.criterion is None else f"{gate.gate} of {gate.criterion}"
        return f"{what} >= {gate.at_least:g}{scope}"
    if isinstance(gate, RegressionGate):
        scope = f" ({', '.join(gate.variants)})" if gate.variants else ""
        return f"no significant regression by {gate.comparison}{scope}"
    return f"cost <= {gate.at_most:g}"


def check_gates(
    gates: Sequence[Any],
    loc: Loc,
    checker: Checker,
    *,
    experiments: Mapping[str, Sequence[str]],
    baseline: str,
    comparisons: Sequence[str],
) -> None:
    """Refuse, before any row, a gate that could never be evaluated; each problem at the gate's own field.

    ``experiments`` maps each experiment's name to its aggregators' names.
    """
    for i, gate in enumerate(gates):
        where = (*loc, i)
        if isinstance(gate, MeanGate | PassRateGate):
            for j, name in enumerate(gate.experiments or []):
                if name not in experiments:
                    checker.add((*where, "experiments", j), f"no experiment '{name}'; there are {_names(experiments)}")
            for name in gate.experiments or list(experiments):
                if name in experiments and STATS not in experiments[name]:
                    checker.add(
                        (*where, "gate"),
                        f"a {gate.gate} gate reads the '{STATS}' aggregator, which experiment '{name}' does not "
                        f"run; add `{STATS}` to its aggregators",
                    )
        elif isinstance(gate, RegressionGate):
            if gate.comparison not in comparisons:
                listed = ", ".join(comparisons) or "none"
                checker.add(
                    (*where, "comparison"),
                    f"the comparison '{gate.comparison}' is not in `comparisons` (listed: {listed}); add it there",
                )
            for j, name in enumerate(gate.variants or []):
                if name not in experiments or name == baseline:
                    variants = _names({n: () for n in experiments if n != baseline})
                    checker.add((*where, "variants", j), f"no variant '{name}'; the variants are {variants}")


def _names(names: Mapping[str, Any]) -> str:
    return ", ".join(f"'{n}'" for n in names) or "none"


def evaluate_gates(
    gates: Sequence[Any], results: Sequence[ExperimentResult], comparisons: Mapping[str, Mapping[str, Any]], loc: str
) -> list[GateResult]:
    """Each gate's verdict with its figures; a figure that cannot be computed fails its gate, saying why."""
    out = []
    for i, gate in enumerate(gates):
        where = f"{loc}[{i}]" if loc else f"gates[{i}]"
        if isinstance(gate, MeanGate | PassRateGate):
            passed, detail, figures = _score_gate(gate, results)
        elif isinstance(gate, RegressionGate):
            passed, detail, figures = _regression_gate(gate, comparisons)
        else:
            passed, detail, figures = _cost_gate(gate, results)
        out.append(GateResult(_describe(gate), passed, detail, figures, where))
    return out


Verdict = tuple[bool, str, dict[str, float | None]]


def _score_gate(gate: MeanGate | PassRateGate, results: Sequence[ExperimentResult]) -> Verdict:
    key = gate.gate
    passed, parts, figures = True, [], {}
    for result in results:
        if gate.experiments is not None and result.name not in gate.experiments:
            continue
        stats = result.aggregates.get(STATS) or {}
        if gate.criterion is not None:
            stats = (stats.get("criteria") or {}).get(gate.criterion) or {}
        else:
            stats = stats.get("overall") or {}
        value = stats.get(key)
        figures[f"{result.name}.{key}"] = value
        if value is None:
            passed = False
            why = "no scores" if key == "mean" else "no pass flags (set a threshold on score_extractor)"
            parts.append(f"{result.name}: {key} unknown ({why})")
            continue
        ok = value >= gate.at_least
        passed = passed and ok
        parts.append(f"{result.name}: {key} {value:.4g} {'>=' if ok else '<'} {gate.at_least:g}")
    figures["at_least"] = gate.at_least
    return passed, "; ".join(parts), figures


def _regression_gate(gate: RegressionGate, comparisons: Mapping[str, Mapping[str, Any]]) -> Verdict:
    passed, parts, figures = True, [], {}
    for variant, by_plugin in comparisons.items():
        if gate.variants is not None and variant not in gate.variants:
            continue
        verdict = by_plugin.get(gate.comparison) or {}
        if "error" in verdict:
            passed = False
            parts.append(f"{variant}: the comparison failed ({verdict['error']})")
            continue
        for criterion, cell in (verdict.get("criteria") or {}).items():
            for test, found in (("mean", cell), ("pass rate", cell.get("mcnemar") or {})):
                if not (found.get("significant") and found.get("direction") == gate.worse):
                    continue
                passed = False
                diff = found.get("mean_difference") if test == "mean" else _rate_change(found)
                key = f"{variant}.{criterion}.{'mean' if test == 'mean' else 'pass_rate'}"
                figures[f"{key}.difference"] = diff
                figures[f"{key}.p_adjusted"] = found.get("p_adjusted")
                parts.append(f"{variant} {criterion}: {_worse(test, gate.worse, diff, found.get('p_adjusted'))}")
    if passed:
        parts.append("no variant is significantly worse than the baseline")
    return passed, "; ".join(parts), figures


def _worse(test: str, worse: str, diff: Any, p: Any) -> str:
    """``mean lower than the baseline by 1.2, p_adjusted 0.001`` (a verdict without a difference says less)."""
    by = f" by {abs(diff):.4g}" if isinstance(diff, int | float) else ""
    label = test if by else "significantly"
    p_text = f", p_adjusted {p:.3g}" if isinstance(p, int | float) else ""
    return f"{label} {worse} than the baseline{by}{p_text}"


def _rate_change(cell: Mapping[str, Any]) -> float | None:
    base, variant = cell.get("baseline_pass_rate"), cell.get("variant_pass_rate")
    return None if base is None or variant is None else variant - base


def _row_metrics(result: ExperimentResult) -> list[Mapping[str, Any]]:
    return [*(r.metrics for r in result.records), *(f.metrics or {} for f in result.failures)]


def _cost_gate(gate: CostGate, results: Sequence[ExperimentResult]) -> Verdict:
    every: list[Mapping[str, Any]] = [
        metrics for result in results for metrics in _row_metrics(result) if metrics.get("cost") is not None
    ]
    costs = [float(metrics["cost"]) for metrics in every]
    figures: dict[str, float | None] = {"at_most": gate.at_most}
    if not costs:
        figures["cost"] = None
        return False, "cost unknown: no row carried a cost (price the calls with a cost tracker)", figures
    total = math.fsum(costs)
    figures["cost"] = total
    ok = total <= gate.at_most
    return ok, f"cost {total:.4g} {'<=' if ok else '>'} {gate.at_most:g} over {len(costs)} rows", figures
