"""Entry point of ``elspeth-orchestrator-experiment``: adds the experiment hookspecs and registers its plugins.

Imports only ``elspeth`` and light local modules, so ``elspeth plugins list`` stays fast; each hook
imports its plugin classes when it runs, and scipy, numpy and jsonschema load only when a plugin uses them.
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
    """Register ``score_stats``, ``cost_summary``, ``latency_summary`` and ``score_recommendation``."""
    from elspeth_experiment.plugins.recommendation import ScoreRecommendation
    from elspeth_experiment.plugins.scoring import ScoreStats
    from elspeth_experiment.plugins.summaries import CostSummary, LatencySummary

    register(ScoreStats)
    register(CostSummary)
    register(LatencySummary)
    register(ScoreRecommendation)


@hookimpl
def register_validators(register: Registrar) -> None:
    """Register ``regex_match``, ``json`` and ``llm_guard``."""
    from elspeth_experiment.plugins.validation import JsonValidator, LlmGuard, RegexMatch

    register(RegexMatch)
    register(JsonValidator)
    register(LlmGuard)


@hookimpl
def register_baseline_comparisons(register: Registrar) -> None:
    """Register ``score_significance`` and ``score_bayes``."""
    from elspeth_experiment.plugins.bayes import ScoreBayes
    from elspeth_experiment.plugins.significance import ScoreSignificance

    register(ScoreSignificance)
    register(ScoreBayes)


@hookimpl
def register_early_stops(register: Registrar) -> None:
    """Register ``threshold`` and ``failure_rate``."""
    from elspeth_experiment.plugins.early_stop import FailureRate, Threshold

    register(Threshold)
    register(FailureRate)
