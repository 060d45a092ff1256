"""A resumed run's spending keys count every attempt, in the metadata and in the aggregates alike."""

from __future__ import annotations

from elspeth import RunMetadata
from elspeth.resume import EarlierAttempts, add_earlier_attempts
from elspeth.totals import RunTotals

EARLIER = RunTotals(cost=0.5, prompt_tokens=100, completion_tokens=40, llm_calls=7, duration_s=2.0)


def metadata(extra: dict) -> RunMetadata:
    return RunMetadata(run_id="r", name="n", orchestrator="o", rows=3, succeeded=3, failed=0, extra=extra)


ATTEMPT = RunTotals(cost=0.25, prompt_tokens=30, completion_tokens=10, llm_calls=3)  # this attempt's, from the ledger


def spending() -> dict:
    return {"llm_calls": 3, "tokens": {"prompt": 30, "completion": 10, "total": 40}, "cost_total": 0.25}


def test_metadata_and_aggregates_each_get_the_earlier_attempts_once() -> None:
    meta, aggregates = metadata(spending()), {**spending(), "rows": 3}
    meta.duration_s = 1.0
    totals = add_earlier_attempts(meta, EarlierAttempts(EARLIER, RunTotals()), ATTEMPT, aggregates)
    for counts in (meta.extra, aggregates):
        assert counts["llm_calls"] == 10
        assert counts["tokens"] == {"prompt": 130, "completion": 50, "total": 180}
        assert counts["cost_total"] == 0.75
    assert aggregates["rows"] == 3  # not a spending key
    assert meta.duration_s == 3.0
    assert meta.extra["attempt_duration_s"] == 1.0
    assert totals == RunTotals(cost=0.75, prompt_tokens=130, completion_tokens=50, llm_calls=10, duration_s=3.0)


def test_a_tokens_dict_the_two_share_is_added_to_once() -> None:
    extra = spending()
    aggregates = {"tokens": extra["tokens"], "cost_total": extra["cost_total"]}
    add_earlier_attempts(metadata(extra), EarlierAttempts(EARLIER, RunTotals()), ATTEMPT, aggregates)
    assert aggregates["tokens"] is extra["tokens"]
    assert extra["tokens"] == {"prompt": 130, "completion": 50, "total": 180}
    assert aggregates["cost_total"] == extra["cost_total"] == 0.75


def test_a_first_attempt_changes_nothing() -> None:
    meta, aggregates = metadata(spending()), spending()
    add_earlier_attempts(meta, None, ATTEMPT, aggregates)
    assert meta.extra == spending()
    assert aggregates == spending()
