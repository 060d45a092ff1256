"""Scorers for Elspeth experiments: LLM judges (rubric, pairwise) and reference-based matches.

Configure them in the experiment orchestrator's options::

    row_plugins:
      - plugin: rubric_judge
        options: {rubric: "Is the answer correct and complete?", scale_min: 1, scale_max: 5}
    comparisons:
      - plugin: pairwise_judge
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports
from elspeth_judges.__about__ import __version__ as __version__

if TYPE_CHECKING:
    from elspeth_judges.costs import JudgeCost
    from elspeth_judges.pairwise import PairwiseJudge
    from elspeth_judges.reference import ReferenceMatch
    from elspeth_judges.rubric import RubricJudge

# names load on first use, so that importing the package (its entry point is ``elspeth_judges.plugin``) stays cheap
_LAZY = {
    "JudgeCost": "elspeth_judges.costs",
    "PairwiseJudge": "elspeth_judges.pairwise",
    "ReferenceMatch": "elspeth_judges.reference",
    "RubricJudge": "elspeth_judges.rubric",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["JudgeCost", "PairwiseJudge", "ReferenceMatch", "RubricJudge"]
