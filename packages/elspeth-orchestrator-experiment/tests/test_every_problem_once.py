"""Every problem in a settings file reported together, each exactly once, at its line (issue 12, point 3)."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import ConfigError
from elspeth_experiment.options import ExperimentOptions
from elspeth_experiment.orchestrator import ExperimentOrchestrator


def problems(run_suite: Any, options: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        run_suite(options, **kwargs)
    return [str(p) for p in info.value.problems]


def test_a_bad_name_in_a_suite_level_list_is_reported_once_not_once_per_experiment(run_suite: Any) -> None:
    experiments = [{"name": "a", "baseline": True}, {"name": "b"}, {"name": "c"}]
    found = problems(run_suite, {"row_plugins": ["no_such_row"], "experiments": experiments})
    assert len(found) == 1
    assert found[0].startswith("orchestrator.options.row_plugins[0].plugin: unknown row_plugin 'no_such_row'")


def test_a_refused_suite_template_is_reported_once(run_suite: Any) -> None:
    experiments = [{"name": "a", "baseline": True}, {"name": "b"}]
    found = problems(run_suite, {"experiments": experiments}, prompts={"user": "{{ text.__class__ }}"})
    assert found == [
        "prompts.user: template line 1: '__class__' is an attribute the sandbox refuses: "
        "every row would fail when it is rendered (settings.yaml:1)"
    ]


def test_an_unknown_llm_hides_nothing(run_suite: Any) -> None:
    options = {
        "row_plugins": ["no_such_row"],
        "aggregators": [{"plugin": "no_such_agg"}],
        "experiments": [{"name": "a", "baseline": True}, {"name": "b", "validators": ["no_such_validator"]}],
    }
    found = problems(run_suite, options, llm="no_such_llm", prompts={"user": "{{ ''.__class__.__mro__ }}"})
    places = [p.split(":")[0] for p in found]
    assert places == [
        "llm.plugin",
        "orchestrator.options.row_plugins[0].plugin",
        "orchestrator.options.aggregators[0].plugin",
        "orchestrator.options.experiments[1].validators[0].plugin",
        "prompts.user",
    ]
    assert "unknown llm_client 'no_such_llm'" in found[0]
    assert "'__mro__' is an attribute the sandbox refuses" in found[4]


def test_the_references_list_names_each_place() -> None:
    options = ExperimentOptions.model_validate(
        {
            "comparisons": ["x"],
            "early_stop": ["y"],
            "experiments": [{"name": "a", "llm": "z", "aggregators": ["w"]}],
        }
    )
    refs = [(r.domain, r.ref.plugin, r.loc) for r in ExperimentOrchestrator.plugin_references(options)]
    assert refs == [
        ("baseline_comparison", "x", ("comparisons", 0)),
        ("early_stop", "y", ("early_stop", 0)),
        ("llm_client", "z", ("experiments", 0, "llm")),
        ("aggregator", "w", ("experiments", 0, "aggregators", 0)),
    ]
