"""Entry point of ``elspeth-orchestrator-experiment``: adds the experiment hookspecs and registers its plugins.

Imports only ``elspeth`` and light local modules, so ``elspeth plugins list`` stays fast.
"""

from __future__ import annotations

from elspeth import HookspecAdder, Registrar, hookimpl
from elspeth_experiment import hookspecs


@hookimpl
def add_hookspecs(add: HookspecAdder) -> None:
    """Add the row, aggregator, validator, baseline-comparison and early-stop domains."""
    add(hookspecs, domains=hookspecs.DOMAINS)


@hookimpl
def register_orchestrators(register: Registrar) -> None:
    """Register the ``experiment`` orchestrator."""
    from elspeth_experiment.orchestrator import ExperimentOrchestrator

    register(ExperimentOrchestrator)


@hookimpl
def register_row_plugins(register: Registrar) -> None:
    """Register ``score_extractor``."""
    from elspeth_experiment.plugins.scoring import ScoreExtractor

    register(ScoreExtractor)


@hookimpl
def register_aggregators(register: Registrar) -> None:
    """Register ``score_stats``."""
    from elspeth_experiment.plugins.scoring import ScoreStats

    register(ScoreStats)
