"""Entry point of ``elspeth-orchestrator-experiment``: adds the experiment hookspecs and registers its plugins.

Imports only ``elspeth`` and the hookspecs, so ``elspeth plugins list`` stays fast; every plugin is
registered by reference and its module loads when first used, scipy, numpy and jsonschema with it.
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
    register(
        "elspeth_experiment.orchestrator:ExperimentOrchestrator",
        name="experiment",
        description="Runs a baseline and variants over the same rows and compares each variant with the baseline.",
    )


@hookimpl
def register_row_plugins(register: Registrar) -> None:
    """Register ``score_extractor``."""
    register(
        "elspeth_experiment.plugins.scoring:ScoreExtractor",
        name="score_extractor",
        description="Reads a score from each criterion's response and flags whether it passes a threshold.",
    )


@hookimpl
def register_aggregators(register: Registrar) -> None:
    """Register ``score_stats``, ``cost_summary``, ``latency_summary`` and ``score_recommendation``."""
    register(
        "elspeth_experiment.plugins.scoring:ScoreStats",
        name="score_stats",
        description="Per criterion and overall: count, missing, mean with its t-based CI, median, std, min, max, "
        "pass rate.",
    )
    register(
        "elspeth_experiment.plugins.summaries:CostSummary",
        name="cost_summary",
        description="Totals and per-row mean, median, min and max of prompt, completion and total tokens, and of cost.",
    )
    register(
        "elspeth_experiment.plugins.summaries:LatencySummary",
        name="latency_summary",
        description="Per-row latency: count, mean, median, p50, p95, p99, min and max, in seconds.",
    )
    register(
        "elspeth_experiment.plugins.recommendation:ScoreRecommendation",
        name="score_recommendation",
        description="A verdict in words (meets target, falls short, inconclusive, collect more data) with reason "
        "and caveats.",
    )


@hookimpl
def register_validators(register: Registrar) -> None:
    """Register ``regex_match``, ``json`` and ``llm_guard``."""
    register(
        "elspeth_experiment.plugins.validation:RegexMatch",
        name="regex_match",
        description="Accepts a response only when its content matches a regular expression.",
    )
    register(
        "elspeth_experiment.plugins.validation:JsonValidator",
        name="json",
        description="Accepts a response only when its content is JSON (optionally an object, or valid against a "
        "JSON Schema).",
    )
    register(
        "elspeth_experiment.plugins.validation:LlmGuard",
        name="llm_guard",
        description="Asks a second LLM whether a response is acceptable; it must answer with the valid or "
        "invalid token.",
    )


@hookimpl
def register_baseline_comparisons(register: Registrar) -> None:
    """Register ``score_significance`` and ``score_bayes``."""
    register(
        "elspeth_experiment.plugins.significance:ScoreSignificance",
        name="score_significance",
        description="Paired or unpaired tests, effect sizes, bootstrap interval and power per variant and "
        "criterion, Holm-adjusted.",
    )
    register(
        "elspeth_experiment.plugins.bayes:ScoreBayes",
        name="score_bayes",
        description="Posterior probability that the variant beats the baseline (mean score and pass rate), with "
        "credible intervals.",
    )


@hookimpl
def register_early_stops(register: Registrar) -> None:
    """Register ``threshold``, ``failure_rate`` and ``sequential``."""
    register(
        "elspeth_experiment.plugins.early_stop:Threshold",
        name="threshold",
        description="Stops an experiment once a record metric (its latest value or its running mean) crosses a "
        "threshold.",
    )
    register(
        "elspeth_experiment.plugins.early_stop:FailureRate",
        name="failure_rate",
        description="Stops an experiment once the share of failed rows exceeds ``max_rate`` (after ``min_rows`` rows).",
    )
    register(
        "elspeth_experiment.plugins.sequential:Sequential",
        name="sequential",
        description="Stops a variant once the mSPRT's always-valid p-value of its paired difference from the "
        "baseline is below alpha.",
    )
