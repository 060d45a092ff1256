"""Entry point of ``elspeth-judges``: registers its plugins in the experiment orchestrator's domains.

Imports only ``elspeth``: each plugin is registered by reference and loads when first used. The hooks
are the experiment orchestrator's (``register_row_plugins``, ``register_baseline_comparisons``,
``register_aggregators``), so these plugins exist where ``elspeth-orchestrator-experiment`` does.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_row_plugins(register: Registrar) -> None:
    """Register ``rubric_judge`` and ``reference_match``."""
    register(
        "elspeth_judges.rubric:RubricJudge",
        name="rubric_judge",
        description="An LLM scores each response on a stated scale against a rubric, with its reasoning (JSON).",
    )
    register(
        "elspeth_judges.reference:ReferenceMatch",
        name="reference_match",
        description="Scores each response against a reference column: exact, normalized, regex or numeric.",
    )


@hookimpl
def register_baseline_comparisons(register: Registrar) -> None:
    """Register ``pairwise_judge``."""
    register(
        "elspeth_judges.pairwise:PairwiseJudge",
        name="pairwise_judge",
        description="An LLM picks the better of baseline and variant per row, order randomized; position bias "
        "measured.",
    )


@hookimpl
def register_aggregators(register: Registrar) -> None:
    """Register ``judge_cost``."""
    register(
        "elspeth_judges.costs:JudgeCost",
        name="judge_cost",
        description="What the judges' calls cost, per judge, apart from the experiment's own calls.",
    )
