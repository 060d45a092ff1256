"""A resumed run's typed facts count every attempt; an orchestrator's own keys in ``extra`` are left alone."""

from __future__ import annotations

import json

from elspeth import RunMetadata
from elspeth.resume import EarlierAttempts, add_earlier_attempts
from elspeth.totals import RunTotals

EARLIER = RunTotals(cost=0.5, prompt_tokens=100, completion_tokens=40, llm_calls=7, duration_s=2.0)
ATTEMPT = RunTotals(cost=0.25, prompt_tokens=30, completion_tokens=10, llm_calls=3)  # this attempt's, from the ledger


def metadata(extra: dict) -> RunMetadata:
    return RunMetadata(run_id="r", name="n", orchestrator="o", rows=3, succeeded=3, failed=0, extra=extra)


def spending() -> dict:
    return {"llm_calls": 3, "tokens": {"prompt": 30, "completion": 10, "total": 40}, "cost_total": 0.25}


def test_a_resume_sets_the_totals_and_durations_over_every_attempt() -> None:
    meta = metadata(spending())
    meta.duration_s = 1.0
    totals = add_earlier_attempts(meta, EarlierAttempts(EARLIER, RunTotals()), ATTEMPT)
    assert totals == RunTotals(cost=0.75, prompt_tokens=130, completion_tokens=50, llm_calls=10, duration_s=3.0)
    assert meta.totals == totals
    assert (meta.duration_s, meta.attempt_duration_s) == (3.0, 1.0)
    assert meta.extra == spending(), "an orchestrator's keys are its own: it reads every attempt from the ledger"
    out = json.loads(json.dumps(meta.to_dict()))
    assert out["totals"] == {
        "cost": 0.75,
        "prompt_tokens": 130,
        "completion_tokens": 50,
        "llm_calls": 10,
        "duration_s": 3.0,
    }
    assert out["attempt_duration_s"] == 1.0
    assert out["duration_s"] == 3.0


def test_a_first_attempt_changes_nothing_but_its_totals() -> None:
    meta = metadata(spending())
    meta.duration_s = 1.5
    totals = add_earlier_attempts(meta, None, ATTEMPT)
    assert totals == RunTotals(cost=0.25, prompt_tokens=30, completion_tokens=10, llm_calls=3, duration_s=1.5)
    assert meta.totals == totals
    assert meta.attempt_duration_s is None
    assert "attempt_duration_s" not in meta.to_dict()
    assert meta.extra == spending()
    assert meta.duration_s == 1.5
