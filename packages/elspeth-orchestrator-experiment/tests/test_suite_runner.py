"""The suite runner end to end: experiment order, overrides, criteria, and every sub-plugin hook."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, LLMRequest, LLMResponse, Record, Row, ValidationFailed, hookimpl
from elspeth.builtins.llm_clients import MockClient


def _by_group(result: Any, group: str) -> list[Record]:
    return [r for r in result.records if r.group == group]


def _reply(record: Record, key: str = "response") -> dict[str, Any]:
    return dict(json.loads(record.outputs[key]))


# --- small test plugins, one per hook -------------------------------------------------------------


class Length:
    """Row plugin: the length of each criterion's response."""

    name = "length"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        fail_on: str | None = None

    def __init__(self, options: Options) -> None:
        self.options = options

    def process_row(self, row: Row, responses: Mapping[str, LLMResponse]) -> dict[str, Any]:
        if self.options.fail_on is not None and row.id == self.options.fail_on:
            raise KeyError("no length for this row")
        return {"length": {c: len(r.content) for c, r in responses.items()}}


class RowCount:
    """Aggregator: counts records and lists their ids."""

    name = "row_count"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        pass

    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        return {"n": len(records), "ids": [r.row_id for r in records]}


class NoTag:
    """Validator: rejects replies whose tag is the forbidden one."""

    name = "no_tag"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        forbidden: str

    def __init__(self, options: Options) -> None:
        self.options = options

    async def validate(self, response: LLMResponse, row: Row) -> None:
        if json.loads(response.content)["tag"] == self.options.forbidden:
            raise ValidationFailed(f"tag {self.options.forbidden} is not allowed")


class CountDelta:
    """Baseline comparison: variant records minus baseline records, and the groups it saw."""

    name = "count_delta"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        pass

    def compare(self, baseline: Any, variant: Any) -> dict[str, Any]:
        return {"delta": len(variant.records) - len(baseline.records), "seen": [baseline.name, variant.name]}


class AfterFirst:
    """Early stop: stops at the first finished row."""

    name = "after_first"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        pass

    def check(self, record: Record) -> dict[str, Any]:
        return {"reason": "seen enough", "first": record.row_id}


@hookimpl
def register_row_plugins(register: Any) -> None:
    register(Length)


@hookimpl
def register_aggregators(register: Any) -> None:
    register(RowCount)


@hookimpl
def register_validators(register: Any) -> None:
    register(NoTag)


@hookimpl
def register_baseline_comparisons(register: Any) -> None:
    register(CountDelta)


@hookimpl
def register_early_stops(register: Any) -> None:
    register(AfterFirst)


TEST_PLUGINS = types.SimpleNamespace(
    register_row_plugins=register_row_plugins,
    register_aggregators=register_aggregators,
    register_validators=register_validators,
    register_baseline_comparisons=register_baseline_comparisons,
    register_early_stops=register_early_stops,
)


# --- order and overrides --------------------------------------------------------------------------


def test_baseline_runs_first_and_every_experiment_sees_the_same_rows(run_suite: Any) -> None:
    result = run_suite(
        {"experiments": [{"name": "variant"}, {"name": "base", "baseline": True}, {"name": "other"}]}, rows=5
    )
    assert result.metadata.extra["experiments"] == ["base", "variant", "other"]
    assert result.aggregates["baseline"] == "base"
    assert [r.group for r in result.records[:5]] == ["base"] * 5
    ids = {g: [r.row_id for r in _by_group(result, g)] for g in ("base", "variant", "other")}
    assert ids["base"] == ids["variant"] == ids["other"] == [f"r{i:03d}" for i in range(5)]


def test_a_variant_uses_its_own_prompts_criteria_client_and_options(run_suite: Any) -> None:
    result = run_suite(
        {
            "criteria": [{"name": "clarity"}],
            "experiments": [
                {"name": "base", "baseline": True},
                {"name": "prompts", "prompts": {"system": "be strict", "user": "Judge {{ criterion }}: {{ text }}"}},
                {"name": "criteria", "criteria": [{"name": "tone"}, {"name": "facts", "user": "F? {{ text }}"}]},
                {"name": "options", "llm_options": {"tag": "seven"}},
                {"name": "client", "llm": {"plugin": "gauss", "options": {"mean": 3}}},
            ],
        },
        rows=2,
    )
    base = _reply(_by_group(result, "base")[0], "response.clarity")
    assert (base["system"], base["user"], base["tag"]) == ("judge", "Rate: item number 0", "default")
    prompts = _reply(_by_group(result, "prompts")[0], "response.clarity")
    assert (prompts["system"], prompts["user"]) == ("be strict", "Judge clarity: item number 0")
    criteria = _by_group(result, "criteria")[0]
    assert sorted(criteria.outputs) == ["response.facts", "response.tone"]
    assert _reply(criteria, "response.facts")["user"] == "F? item number 0"
    assert _reply(criteria, "response.tone")["user"] == "Rate: item number 0"
    assert _reply(_by_group(result, "options")[0], "response.clarity")["tag"] == "seven"
    assert _by_group(result, "client")[0].outputs["response.clarity"].startswith("Score: ")


def test_a_variant_with_another_seed_gets_exactly_that_seeds_replies(run_suite: Any) -> None:
    result = run_suite(
        {"experiments": [{"name": "base", "baseline": True}, {"name": "seeded", "llm_options": {"seed": 11}}]},
        llm={"plugin": "mock", "options": {"seed": 7}},
        rows=3,
    )

    def expected(seed: int, text: str) -> str:
        client = MockClient(MockClient.Options(seed=seed))
        return asyncio.run(client.generate(LLMRequest(system="judge", user=f"Rate: {text}"))).content

    for group, seed in (("base", 7), ("seeded", 11)):
        for record in _by_group(result, group):
            assert record.outputs["response"] == expected(seed, record.inputs["text"])
    assert _by_group(result, "base")[0].outputs != _by_group(result, "seeded")[0].outputs


def test_one_call_per_criterion_with_the_criterion_in_the_template(run_suite: Any) -> None:
    result = run_suite(
        {"criteria": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
        prompts={"system": "criterion {{ criterion }}", "user": "{{ criterion }}: {{ text }}"},
        rows=2,
    )
    record = result.records[0]
    assert {k: _reply(record, k)["system"] for k in record.outputs} == {
        "response.a": "criterion a",
        "response.b": "criterion b",
        "response.c": "criterion c",
    }
    assert record.metrics["completion_tokens"] == 3 * 7


def test_latency_tokens_and_cost_are_in_every_record(run_suite: Any) -> None:
    result = run_suite({"criteria": [{"name": "a"}, {"name": "b"}]}, llm={"plugin": "echo", "options": {"cost": 0.25}})
    for record in result.records:
        prompt = len(f"Rate: {record.inputs['text']}")
        assert record.metrics["prompt_tokens"] == 2 * prompt
        assert record.metrics["completion_tokens"] == 14
        assert record.metrics["cost"] == pytest.approx(0.5)
        assert record.metrics["latency_s"] >= 0


# --- the experiment's own hooks -------------------------------------------------------------------


def test_register_row_plugins_merges_metrics_into_each_record(run_suite: Any) -> None:
    result = run_suite({"row_plugins": ["length"]}, modules=[TEST_PLUGINS], rows=3)
    for record in result.records:
        assert record.metrics["length"] == {"default": len(record.outputs["response"])}
        assert "prompt_tokens" in record.metrics


def test_register_aggregators_summary_is_stored_per_experiment(run_suite: Any) -> None:
    result = run_suite(
        {"aggregators": ["row_count"], "experiments": [{"name": "b", "baseline": True}, {"name": "v"}]},
        modules=[TEST_PLUGINS],
        rows=4,
    )
    for name in ("b", "v"):
        summary = result.aggregates["experiments"][name]["aggregates"]["row_count"]
        assert summary == {"n": 4, "ids": ["r000", "r001", "r002", "r003"]}


def test_register_validators_rejects_and_keeps_the_response(run_suite: Any) -> None:
    result = run_suite(
        {
            "validators": [{"plugin": "no_tag", "options": {"forbidden": "bad"}}],
            "experiments": [{"name": "b", "baseline": True}, {"name": "v", "llm_options": {"tag": "bad"}}],
        },
        modules=[TEST_PLUGINS],
        rows=3,
    )
    assert len(_by_group(result, "b")) == 3
    failures = [f for f in result.failures if f.group == "v"]
    assert len(failures) == 3
    assert {f.stage for f in failures} == {"validation:no_tag"}
    assert failures[0].error == "tag bad is not allowed"
    assert json.loads(failures[0].output["response"])["tag"] == "bad"


def test_register_baseline_comparisons_runs_once_per_variant(run_suite: Any) -> None:
    result = run_suite(
        {
            "comparisons": ["count_delta"],
            "experiments": [
                {"name": "b", "baseline": True},
                {"name": "v1"},
                {"name": "v2", "llm": {"plugin": "gauss", "options": {"fail_rows": ["r000"]}}},
            ],
        },
        modules=[TEST_PLUGINS],
        rows=3,
    )
    comparisons = result.aggregates["comparisons"]
    assert comparisons == {
        "v1": {"count_delta": {"delta": 0, "seen": ["b", "v1"]}},
        "v2": {"count_delta": {"delta": -1, "seen": ["b", "v2"]}},
    }


def test_register_early_stops_keeps_rows_in_flight_and_records_the_reason(run_suite: Any) -> None:
    result = run_suite(
        {"early_stop": ["after_first"], "experiments": [{"name": "b", "baseline": True}, {"name": "v"}]},
        llm={"plugin": "mock", "options": {"latency_ms": 30}},
        modules=[TEST_PLUGINS],
        rows=40,
        concurrency=4,
    )
    for name in ("b", "v"):
        exp = result.aggregates["experiments"][name]
        assert exp["early_stop"]["plugin"] == "after_first"
        assert exp["early_stop"]["reason"] == "seen enough"
        # the other three rows were already in flight when the first finished: they are kept
        assert 4 <= exp["succeeded"] < 40
        assert exp["succeeded"] + exp["failed"] + exp["not_run"] == 40
    assert result.metadata.status == "stopped"
    assert set(result.metadata.to_dict()["early_stop"]) == {"b", "v"}


# --- failures -------------------------------------------------------------------------------------


def test_failures_are_recorded_per_stage_and_never_dropped(run_suite: Any) -> None:
    user = "{% if text == 'item number 1' %}{{ text.nope.deeper }}{% endif %}{{ text }}"
    result = run_suite(
        {
            "row_plugins": [{"plugin": "length", "options": {"fail_on": "r002"}}],
            "validators": [{"plugin": "no_tag", "options": {"forbidden": "bad"}}],
            "experiments": [
                {"name": "b", "baseline": True},
                {"name": "llm", "llm": {"plugin": "gauss", "options": {"fail_rows": ["r003"]}}, "validators": []},
                {"name": "valid", "llm_options": {"tag": "bad"}},
            ],
        },
        prompts={"system": "s", "user": user},
        modules=[TEST_PLUGINS],
        rows=5,
    )
    stages = {(f.group, f.row_id): f.stage for f in result.failures}
    assert stages[("b", "r001")] == "render"
    assert stages[("b", "r002")] == "row_plugin:length"
    assert stages[("llm", "r003")] == "llm"
    assert {s for (g, _), s in stages.items() if g == "valid"} == {"render", "validation:no_tag"}
    llm_failure = next(f for f in result.failures if f.stage == "llm")
    assert "gauss refuses row r003" in llm_failure.error
    for name in ("b", "llm", "valid"):
        exp = result.aggregates["experiments"][name]
        assert exp["succeeded"] + exp["failed"] == 5
    assert result.metadata.succeeded + result.metadata.failed == 15


def test_a_validator_that_crashes_fails_the_row_not_the_run(run_suite: Any) -> None:
    # no_tag expects JSON; gauss replies "Score: ..." so json.loads raises inside the validator
    result = run_suite(
        {"validators": [{"plugin": "no_tag", "options": {"forbidden": "bad"}}]},
        llm={"plugin": "gauss"},
        modules=[TEST_PLUGINS],
        rows=3,
    )
    assert len(result.failures) == 3
    assert {f.stage for f in result.failures} == {"validation:no_tag"}
    assert result.failures[0].error.startswith("JSONDecodeError")
    assert result.failures[0].output["response"].startswith("Score: ")


def test_an_unknown_sub_plugin_is_reported_at_its_place(run_suite: Any) -> None:
    with pytest.raises(ConfigError) as info:
        run_suite({"aggregators": ["no_such_thing"]})
    assert "orchestrator.options.aggregators[0]" in str(info.value)
    assert "no_such_thing" in str(info.value)
