"""Elspeth's experiment orchestrator: baseline and variants over the same rows, with their own plugin domains.

Plugin authors implement the hooks in :mod:`elspeth_experiment.hookspecs` and the protocols in
:mod:`elspeth_experiment.protocols`.
"""

from elspeth_experiment.protocols import (
    Aggregator,
    BaselineComparison,
    EarlyStop,
    ExperimentResult,
    RowPlugin,
    Validator,
)

__version__ = "0.1.0"

__all__ = ["Aggregator", "BaselineComparison", "EarlyStop", "ExperimentResult", "RowPlugin", "Validator"]
