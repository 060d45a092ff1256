"""Validation re-asks with the response cache on: a re-ask is live, and a rejected answer is never replayed."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

from elspeth import LLMRequest, LLMResponse, Usage, hookimpl


class Flaky:
    """Answers 'bad' the first ``bad_first`` times it is asked a prompt and 'good' after; always 'bad' for some rows."""

    name = "flaky"
    asked: ClassVar[list[str]] = []  # every prompt asked live, across instances and runs

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        bad_first: int = Field(1, description="bad answers per prompt before a good one")
        always_bad: list[str] = Field(default_factory=list, description="row ids that never get a good answer")

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        Flaky.asked.append(request.user)
        seen = Flaky.asked.count(request.user)
        bad = request.metadata["row_id"] in self.options.always_bad or seen <= self.options.bad_first
        return LLMResponse(content=f"{'bad' if bad else 'good'} answer #{seen}", usage=Usage(5, 2), model="flaky")


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(Flaky)


FLAKY = types.SimpleNamespace(register_llm_clients=register_llm_clients)
OPTIONS = {"validators": [{"plugin": "regex_match", "options": {"pattern": "good", "mode": "search"}}]}
CACHE = {"utilities": [{"plugin": "response_cache"}]}


@pytest.fixture(autouse=True)
def _fresh_log() -> Iterator[None]:
    Flaky.asked = []
    yield
    Flaky.asked = []


def _cache_summary(result: Any) -> dict[str, Any]:
    return dict(result.metadata.to_dict()["utility"]["response_cache"])


def test_a_re_ask_is_live_and_only_the_accepted_answer_is_kept(run_suite: Any) -> None:
    options = {**OPTIONS, "validation_retries": 1}
    first = run_suite(options, llm={"plugin": "flaky"}, rows=4, modules=[FLAKY], settings_extra=CACHE)
    # the re-ask went to the client: had it been answered from the cache, it would be the rejected 'bad' again
    assert first.failures == []
    assert [r.outputs["response"] for r in first.records] == ["good answer #2"] * 4
    assert all(r.metrics["validation_retries"] == 1 for r in first.records)
    assert len(Flaky.asked) == 8
    assert _cache_summary(first) == {"hits": 0, "misses": 4, "discarded": 4}

    Flaky.asked = []
    second = run_suite(options, llm={"plugin": "flaky"}, rows=4, modules=[FLAKY], settings_extra=CACHE)
    # the same experiment again: every row is the accepted answer, from the cache, at the first attempt
    assert Flaky.asked == []
    assert second.failures == []
    assert [r.outputs["response"] for r in second.records] == ["good answer #2"] * 4
    assert all(r.metrics["cached"] and r.metrics["validation_retries"] == 0 for r in second.records)
    assert _cache_summary(second) == {"hits": 4, "misses": 0}


def test_a_row_rejected_to_the_end_leaves_nothing_in_the_cache(run_suite: Any) -> None:
    llm = {"plugin": "flaky", "options": {"bad_first": 0, "always_bad": ["r001"]}}
    options = {**OPTIONS, "validation_retries": 1}
    first = run_suite(options, llm=llm, rows=3, modules=[FLAKY], settings_extra=CACHE)
    (failure,) = first.failures
    assert failure.row_id == "r001"
    assert [a["response"] for a in failure.attempts] == ["bad answer #1", "bad answer #2"]
    assert Flaky.asked.count("Rate: item number 1") == 2

    Flaky.asked = []
    second = run_suite(options, llm=llm, rows=3, modules=[FLAKY], settings_extra=CACHE)
    # the rejected answer was not kept: the failing row is asked live again, the good rows come from the cache
    assert Flaky.asked == ["Rate: item number 1", "Rate: item number 1"]
    assert [a["response"] for a in second.failures[0].attempts] == ["bad answer #1", "bad answer #2"]
    assert {r.row_id for r in second.records if r.metrics.get("cached")} == {"r000", "r002"}


def test_without_retries_a_rejected_answer_is_still_evicted(run_suite: Any) -> None:
    llm = {"plugin": "flaky", "options": {"bad_first": 1}}
    first = run_suite(OPTIONS, llm=llm, rows=2, modules=[FLAKY], settings_extra=CACHE)
    assert len(first.failures) == 2
    second = run_suite(OPTIONS, llm=llm, rows=2, modules=[FLAKY], settings_extra=CACHE)
    # a replayed rejection would fail again; the live second answer is good
    assert second.failures == []
    assert [r.outputs["response"] for r in second.records] == ["good answer #2"] * 2
    assert not any(r.metrics.get("cached") for r in second.records)
