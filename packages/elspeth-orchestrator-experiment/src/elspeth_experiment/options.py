"""The experiment orchestrator's options (``orchestrator.options`` in the settings)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth import PluginRef, PluginReference
from elspeth_experiment.epochs import Reducer
from elspeth_experiment.gates import Gate

__all__ = [
    "SUB_PLUGIN_LISTS",
    "Criterion",
    "ExperimentOptions",
    "ExperimentSpec",
    "PromptOverride",
    "plugin_references",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class PromptOverride(BaseModel):
    """Prompts that replace the suite's for one experiment."""

    model_config = ConfigDict(extra="forbid")

    system: str | None = Field(None, description="system prompt template")
    user: str | None = Field(None, description="user prompt template")


class Criterion(BaseModel):
    """One thing to judge per row: one LLM call per criterion, with ``criterion`` set in the template."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="the criterion's name")
    user: str | None = Field(None, description="user prompt template for this criterion (default: the main one)")


class ExperimentSpec(BaseModel):
    """One experiment of a suite; what it leaves unset comes from the suite defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="the experiment's name")
    baseline: bool = Field(False, description="the experiment every other one is compared with")
    description: str = Field("", description="what the variant changes, for reports")
    prompts: PromptOverride | None = Field(None, description="prompt templates replacing the suite's")
    criteria: list[Criterion] | None = Field(None, description="criteria replacing the suite's")
    llm: PluginRef | None = Field(None, description="an LLM client replacing the settings' `llm`")
    llm_options: dict[str, Any] = Field(default_factory=dict, description="options merged over the client's")
    row_plugins: list[PluginRef] | None = Field(None, description="row plugins replacing the suite's")
    aggregators: list[PluginRef] | None = Field(None, description="aggregators replacing the suite's")
    validators: list[PluginRef] | None = Field(None, description="validators replacing the suite's")
    early_stop: list[PluginRef] | None = Field(None, description="early-stop plugins replacing the suite's")
    epochs: int | None = Field(None, ge=1, le=1000, description="times each row is asked (default: the suite's)")
    reducer: Reducer | None = Field(None, description="how a row's epochs become its score (default: the suite's)")
    reducer_k: int | None = Field(
        None, ge=1, description="k of at_least_k, pass_at_k, pass_hat_k (default: the suite's)"
    )
    epoch_temperatures: list[float | None] | None = Field(
        None, description="temperature of each epoch, null for the client's (default: the suite's)"
    )


class ExperimentOptions(BaseModel):
    """Suite defaults and the experiments; without ``experiments`` there is one, called ``default``."""

    model_config = ConfigDict(extra="forbid")

    criteria: list[Criterion] = Field(default_factory=list, description="criteria judged for every row")
    row_plugins: list[PluginRef] = Field(default_factory=list, description="row plugins, in order")
    aggregators: list[PluginRef] = Field(default_factory=list, description="aggregators, in order")
    validators: list[PluginRef] = Field(default_factory=list, description="response validators")
    early_stop: list[PluginRef] = Field(default_factory=list, description="early-stop plugins")
    comparisons: list[PluginRef] = Field(default_factory=list, description="baseline comparison plugins")
    validation_retries: int = Field(
        0,
        ge=0,
        le=10,
        description="times to ask the LLM again when a validator rejects a response; then the row fails "
        "with the last response and every attempt recorded",
    )
    experiments: list[ExperimentSpec] = Field(default_factory=list, description="baseline and variants")
    epochs: int = Field(
        1,
        ge=1,
        le=1000,
        description="times each row is asked; the epochs are scored one by one and reduced to the row's score",
    )
    reducer: Reducer = Field(
        "mean",
        description="how a row's epochs become its score: mean, median, mode, max, min (of scores) or "
        "at_least_k, pass_at_k, pass_hat_k (of pass flags, with reducer_k)",
    )
    reducer_k: int = Field(1, ge=1, description="k of at_least_k, pass_at_k and pass_hat_k; at most epochs")
    epoch_seed: int = Field(
        0, description="seed of epoch 1, when the client takes a seed; epoch e gets epoch_seed + e - 1"
    )
    epoch_temperatures: list[float | None] | None = Field(
        None, description="temperature of each epoch (one entry per epoch, null for the client's own)"
    )
    group_by: str | None = Field(
        None, description="a column: every aggregate and comparison is also given per value of it"
    )
    group_min_rows: int = Field(
        5, ge=1, description="with group_by, the fewest rows a category needs to be compared (fewer: stated, not run)"
    )
    gates: list[Gate] = Field(
        default_factory=list,
        description="quality gates the finished suite must meet (mean, pass_rate, no_regression, cost); "
        "`elspeth run` exits 3 when one fails",
    )


SUB_PLUGIN_LISTS = (
    ("row_plugins", "row_plugin"),
    ("aggregators", "aggregator"),
    ("validators", "validator"),
    ("early_stop", "early_stop"),
)
"""Each list of sub-plugins an experiment (or the suite) takes, with its plugin domain."""


def plugin_references(options: ExperimentOptions) -> list[PluginReference]:
    """Every plugin the options name (sub-plugins, comparisons, experiments' own clients), each where it is written."""
    refs = [
        PluginReference("baseline_comparison", ref, ("comparisons", i)) for i, ref in enumerate(options.comparisons)
    ]
    for key, domain in SUB_PLUGIN_LISTS:
        refs += [PluginReference(domain, ref, (key, i)) for i, ref in enumerate(getattr(options, key))]
    for n, spec in enumerate(options.experiments):
        if spec.llm is not None:
            refs.append(PluginReference("llm_client", spec.llm, ("experiments", n, "llm")))
        for key, domain in SUB_PLUGIN_LISTS:
            own = getattr(spec, key) or []
            refs += [PluginReference(domain, ref, ("experiments", n, key, i)) for i, ref in enumerate(own)]
    return refs
