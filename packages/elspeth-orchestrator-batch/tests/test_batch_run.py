"""The batch orchestrator run in-process through ``elspeth.engine``: mapping, failures, order, streaming."""

from __future__ import annotations

import csv
import gc
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import Failure, Record, RunFailed, RunResult, Spool
from elspeth.registry import Registry
from elspeth_batch.orchestrator import BatchOrchestrator
from elspeth_testing.plugin import RunSettings, WriteSettings

needs_processors = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_processors") is None, reason="elspeth-processors is not installed"
)


def settings(orchestrator: dict[str, Any] | None = None, **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "batch-test",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
        "llm": {"plugin": "scripted", "options": {}},
        "prompts": {"system": "Judge the review.", "user": "{{ product }}: {{ review }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "batch", "options": orchestrator or {}},
        "sinks": [
            {"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}},
            {"plugin": "jsonl", "options": {"path": "results.jsonl"}},
        ],
        "store": {"enabled": False},
    }
    doc.update(top)
    return json.dumps(doc, indent=2)


@pytest.fixture
def run(write_settings: WriteSettings, run_settings: RunSettings, registry: Registry, reviews_csv: Any) -> Any:
    def go(text: str, rows: int = 6, data: str | None = None) -> RunResult:
        path = write_settings(text, {"data.csv": data if data is not None else reviews_csv(rows)})
        return run_settings(path, registry)

    return go


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_each_row_gets_the_reply_as_a_new_column_in_input_order(run: Any, tmp_path: Path) -> None:
    llm = {"plugin": "scripted", "options": {"default": "seen: {user}", "jitter_ms": 30}}
    result = run(settings(llm=llm, concurrency=8), rows=40)
    rows = read_csv(tmp_path / "output/results.csv")
    assert [r["row_id"] for r in rows] == [f"r{i:04d}" for i in range(40)]
    assert rows[5]["response"] == "seen: lamp: review number 5"
    assert rows[5]["product"] == "lamp"
    assert result.metadata.succeeded == 40
    assert result.metadata.failed == 0
    assert [r.row_id for r in result.records] == [f"r{i:04d}" for i in range(40)]


def test_json_fields_become_columns_with_dotted_paths_and_fences(run: Any, tmp_path: Path) -> None:
    replies = {
        "r0000": '{"label": "good", "detail": {"score": 4}, "tags": ["a", "b"]}',
        "r0001": '```json\n{"label": "bad", "detail": {"score": 1}, "tags": ["c"]}\n```',
        "r0002": 'Sure! Here it is: {"label": "meh", "detail": {"score": 2.5}, "tags": []} Hope that helps.',
    }
    llm = {"plugin": "scripted", "options": {"replies": replies}}
    fields = {"label": "label", "score": "detail.score", "first_tag": "tags.0"}
    run(settings({"json_fields": fields}, llm=llm), rows=2)
    rows = read_csv(tmp_path / "output/results.csv")
    assert [(r["label"], r["score"], r["first_tag"]) for r in rows] == [("good", "4", "a"), ("bad", "1", "c")]
    assert "response" not in rows[0], "without include_raw the raw reply is not a column"


def test_a_reply_missing_a_json_field_is_a_failure_with_the_reply_kept(run: Any, tmp_path: Path) -> None:
    replies = {"r0001": '{"label": "x"}', "r0002": "not json at all"}
    llm = {"plugin": "scripted", "options": {"replies": replies, "default": '{"label": "ok", "score": 3}'}}
    result = run(settings({"json_fields": {"label": "label", "score": "score"}}, llm=llm), rows=4)
    assert [r.row_id for r in result.records] == ["r0000", "r0003"]
    missing, not_json = list(result.failures)
    assert (missing.row_id, missing.stage) == ("r0001", "parse")
    assert missing.error == """the reply's JSON has no 'score' (json_fields.score); the reply was '{"label": "x"}'"""
    assert missing.output == {"response": '{"label": "x"}'}
    assert (not_json.row_id, not_json.stage) == ("r0002", "parse")
    assert not_json.error.startswith("the reply is not JSON")
    assert not_json.error.endswith("; the reply was 'not json at all'")
    failures = read_csv(tmp_path / "output/failures.csv")
    assert [(f["row_id"], f["failure.stage"]) for f in failures] == [("r0001", "parse"), ("r0002", "parse")]
    lines = [json.loads(line) for line in (tmp_path / "output/results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(line["row_id"], line["status"]) for line in lines] == [
        ("r0000", "ok"),
        ("r0003", "ok"),
        ("r0001", "failed"),
        ("r0002", "failed"),
    ]


def test_keep_raw_keeps_a_reply_that_does_not_parse_as_a_record(run: Any) -> None:
    llm = {"plugin": "scripted", "options": {"replies": {"r0001": "oops"}, "default": '{"label": "ok"}'}}
    options = {"json_fields": {"label": "label"}, "on_parse_error": "keep_raw", "output_field": "raw"}
    result = run(settings(options, llm=llm), rows=3)
    assert list(result.failures) == []
    kept = result.records[1]
    assert kept.outputs["raw"] == "oops"
    assert kept.outputs["label"] is None
    assert kept.outputs["parse_error"].startswith("the reply is not JSON")
    assert result.records[0].outputs == {"label": "ok"}
    assert result.metadata.extra["parse_errors_kept"] == 1


def test_an_error_that_is_not_retryable_fails_its_row_after_one_attempt(run: Any) -> None:
    # a plain RuntimeError is not an LLMError: retrying it would not help, so max_attempts does not apply
    llm = {"plugin": "scripted", "options": {"fail_rows": ["r0002", "r0004"], "jitter_ms": 10}}
    result = run(settings(llm=llm, retry={"max_attempts": 3, "initial_delay_s": 0}), rows=6)
    assert [r.row_id for r in result.records] == ["r0000", "r0001", "r0003", "r0005"]
    assert [f.row_id for f in result.failures] == ["r0002", "r0004"]
    failure = result.failures[0]
    assert failure.stage == "llm"
    assert "scripted failure for row r0002" in failure.error
    assert "not retryable after 1 attempt" in failure.error
    assert [(a["attempt"], a["error_type"], a["retryable"]) for a in failure.attempts] == [(1, "RuntimeError", False)]
    assert failure.inputs["review"] == "review number 2"
    assert result.metadata.rows == 6
    assert result.metadata.extra["failures_by_stage"] == {"llm": 2}


def test_a_retryable_error_is_tried_max_attempts_times_with_every_attempt_recorded(run: Any) -> None:
    llm = {"plugin": "scripted", "options": {"server_errors": {"r0001": 99, "r0002": 2}}}
    retry = {"max_attempts": 3, "initial_delay_s": 0, "jitter": False}
    result = run(settings(llm=llm, retry=retry), rows=4)
    (failure,) = result.failures
    assert (failure.row_id, failure.stage) == ("r0001", "llm")
    assert "attempts exhausted after 3 attempts" in failure.error
    assert [(a["attempt"], a["status"], a["retryable"], a["stage"]) for a in failure.attempts] == [
        (1, 503, True, "llm"),
        (2, 503, True, "llm"),
        (3, 503, True, "llm"),
    ]
    # a row answered on its third attempt is a record that says how many it took
    assert {r.row_id: r.metrics["attempts"] for r in result.records} == {"r0000": 1, "r0002": 3, "r0003": 1}
    assert result.metadata.extra["llm_calls"] == 3, "llm_calls counts answered calls, one per record"


def test_metadata_totals_tokens_cost_and_timings(run: Any) -> None:
    cost = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1000, "output": 2000}}}}
    result = run(settings(cost_tracker=cost), rows=5)
    extra = result.metadata.to_dict()
    prompt = sum(r.metrics["prompt_tokens"] for r in result.records)
    completion = sum(r.metrics["completion_tokens"] for r in result.records)
    assert extra["tokens"] == {"prompt": prompt, "completion": completion, "total": prompt + completion}
    assert extra["llm_calls"] == 5
    assert extra["cost_total"] == pytest.approx(sum(r.metrics["cost"] for r in result.records))
    assert extra["cost_total"] == pytest.approx((prompt * 1000 + completion * 2000) / 1e6)
    assert extra["timings"]["rows_per_s"] > 0
    assert extra["timings"]["llm_latency_s_mean"] >= 0
    assert result.aggregates["tokens"] == extra["tokens"]


def test_processors_run_before_and_post_processors_after(run: Any, tmp_path: Path) -> None:
    # add_length declares `length`, so the template may use it; upper runs on the reply afterwards
    text = settings(
        {"post_processors": [{"plugin": "upper", "options": {"column": "response"}}]},
        processors=["add_length"],
        prompts={"user": "{{ review }} ({{ length }} chars)"},
    )
    result = run(text, rows=2)
    assert result.records[1].outputs == {"response": "REVIEW NUMBER 1 (15 CHARS)"}
    assert result.records[1].inputs["length"] == 15
    rows = read_csv(tmp_path / "output/results.csv")
    assert rows[1]["response"] == "REVIEW NUMBER 1 (15 CHARS)"
    assert rows[1]["review"] == "review number 1", "the input column is untouched"


def test_a_failing_processor_or_post_processor_fails_only_its_row(run: Any) -> None:
    text = settings(
        {"post_processors": [{"plugin": "explode", "options": {"column": "id", "value": "r0003"}}]},
        processors=[{"plugin": "explode", "options": {"column": "id", "value": "r0001"}}],
    )
    result = run(text, rows=5)
    assert [r.row_id for r in result.records] == ["r0000", "r0002", "r0004"]
    before, after = result.failures
    assert (before.row_id, before.stage, before.error) == ("r0001", "processor", "ValueError: id is r0001")
    assert (after.row_id, after.stage, after.error) == ("r0003", "processor:explode", "ValueError: id is r0003")
    assert after.output == {"response": "kettle: review number 3"}


def test_a_slow_row_holds_back_at_most_the_reorder_window(run: Any) -> None:
    llm = {"plugin": "scripted", "options": {"slow_rows": {"r0000": 300}}}
    result = run(settings({"reorder_window": 8}, llm=llm, concurrency=4), rows=60)
    assert [r.row_id for r in result.records] == [f"r{i:04d}" for i in range(60)]
    assert 1 <= result.metadata.extra["reorder_buffer_peak"] <= 8


def test_a_budget_stops_taking_rows_and_keeps_what_finished(run: Any) -> None:
    cost = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1e6, "output": 0}}, "budget": 50}}
    llm = {"plugin": "scripted", "options": {"jitter_ms": 5}}
    result = run(settings(llm=llm, cost_tracker=cost, concurrency=2), rows=200)
    assert result.metadata.status == "stopped"
    assert "budget" in result.metadata.to_dict()["stop_reason"]
    assert result.metadata.outcome.stop_reason == result.metadata.to_dict()["stop_reason"]
    ids = [r.row_id for r in result.records]
    assert 0 < len(ids) < 200
    assert ids == sorted(ids), "what finished is still in input order"
    assert result.metadata.rows == len(ids) + len(result.failures)
    not_run = result.metadata.extra["not_run"]
    assert not_run == 200 - result.metadata.rows, "every row of the input is either run or counted as not run"
    assert result.aggregates["not_run"] == not_run
    (line,) = BatchOrchestrator(BatchOrchestrator.Options()).summary(result)
    assert f", {not_run:,} not run" in line


def test_a_run_that_is_not_stopped_has_no_rows_not_run(run: Any) -> None:
    result = run(settings(), rows=5)
    assert (result.metadata.extra["not_run"], result.aggregates["not_run"]) == (0, 0)


def test_records_and_failures_are_spools_that_sinks_and_callers_read_many_times(run: Any, tmp_path: Path) -> None:
    llm = {"plugin": "scripted", "options": {"fail_rows": ["r0001"]}}
    result = run(settings({"chunk_size": 3}, llm=llm), rows=10)
    assert isinstance(result.records, Spool)
    assert isinstance(result.failures, Spool)
    assert len(result.records) == 9
    assert list(result.records) == list(result.records)
    assert all(isinstance(r, Record) for r in result.records)
    assert isinstance(result.failures[0], Failure)
    files = [result.records.path, result.failures.path]
    assert all(p.parent == (tmp_path / "output") and p.exists() for p in files)
    del result
    gc.collect()
    assert not any(p.exists() for p in files), "the spools' files go when the result does"
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == ["failures.csv", "results.csv", "results.jsonl"]


def test_spool_dir_puts_the_spools_elsewhere(run: Any, tmp_path: Path) -> None:
    result = run(settings({"spool_dir": "spools"}), rows=3)
    assert result.records.path.parent == tmp_path / "output" / "spools"  # type: ignore[attr-defined]


def test_params_are_sent_with_every_request(run: Any) -> None:
    llm = {"plugin": "scripted", "options": {"default": "{params}"}}
    result = run(settings({"params": {"temperature": 0.1, "max_tokens": 5}}, llm=llm), rows=2)
    assert [r.outputs["response"] for r in result.records] == ['{"max_tokens": 5, "temperature": 0.1}'] * 2


# ---- the response cache and the rate limiter -----------------------------------------------------

PRICES = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1000, "output": 2000}}}}


def test_the_response_cache_answers_a_second_run_for_nothing(run: Any) -> None:
    cached = settings(cost_tracker=PRICES, utilities=[{"plugin": "response_cache"}])
    first = run(cached, rows=4)
    assert (first.metadata.extra["llm_calls"], first.metadata.extra["cache_hits"]) == (4, 0)
    assert first.metadata.extra["cost_total"] > 0
    assert not any(r.metrics.get("cached") for r in first.records)

    second = run(cached, rows=4)
    extra = second.metadata.to_dict()
    assert (extra["llm_calls"], extra["cache_hits"]) == (0, 4), "a cache hit is not an LLM call"
    assert extra["cost_total"] == 0
    assert extra["tokens"]["total"] == 0, "tokens count what was sent to the LLM in this run"
    assert [(r.metrics["cached"], r.metrics["cost"]) for r in second.records] == [(True, 0.0)] * 4
    assert [r.outputs for r in second.records] == [r.outputs for r in first.records]
    assert extra["utility"]["response_cache"] == {"hits": 4, "misses": 0}

    # two new rows: only they are called and paid for
    third = run(cached, rows=6)
    extra = third.metadata.to_dict()
    assert (extra["llm_calls"], extra["cache_hits"]) == (2, 4)
    live = [r for r in third.records if not r.metrics.get("cached")]
    assert [r.row_id for r in live] == ["r0004", "r0005"]
    assert extra["cost_total"] == pytest.approx(sum(r.metrics["cost"] for r in live))


def test_a_rate_limiter_is_asked_before_every_call(run: Any) -> None:
    # one call per window of 0.2 s and four rows at once: three calls must wait for a later window
    limiter = {"plugin": "fixed_window", "options": {"requests": 1, "per_seconds": 0.2}}
    result = run(settings(rate_limiter=limiter, concurrency=4), rows=4)
    assert len(result.records) == 4
    assert result.metadata.to_dict()["rate_limiter"]["fixed_window"]["waited_s"] > 0


# ---- personal data, failures' outputs and sub-plugin summaries ---------------------------------------

PII_DATA = (
    "id,product,review,age\n"
    "r0000,kettle,ann@example.org paid with 4111 1111 1111 1111,34\n"
    "r0001,lamp,bob@example.net paid with 5555 5555 5555 4444,-3\n"
    "r0002,toaster,cat@example.com paid with 4012 8888 8888 1881,41\n"
)
PII_VALUES = [
    "ann@example.org",
    "bob@example.net",
    "cat@example.com",
    "4111 1111 1111 1111",
    "5555 5555 5555 4444",
    "4012 8888 8888 1881",
]
AGE_SCHEMA = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
ALL_SINKS = [
    {"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}},
    {"plugin": "jsonl", "options": {"path": "results.jsonl"}},
    {"plugin": "json", "options": {"path": "summary.json"}},
]


@needs_processors
def test_personal_data_redacted_before_a_failing_step_stays_out_of_every_output_and_the_store(
    run: Any, tmp_path: Path
) -> None:
    pytest.importorskip("jsonschema")
    # r0001 fails the schema after redaction; r0002 fails at the LLM after redaction
    processors = [
        {"plugin": "pii_redaction", "options": {"columns": ["review"]}},
        {"plugin": "schema_validation", "options": {"schema": AGE_SCHEMA}},
    ]
    llm = {"plugin": "scripted", "options": {"fail_rows": ["r0002"]}}
    result = run(settings(processors=processors, llm=llm, store={"enabled": True}, sinks=ALL_SINKS), data=PII_DATA)
    schema, llm_failure = result.failures
    assert (schema.row_id, schema.stage) == ("r0001", "processor")
    assert schema.error.startswith("SchemaViolation: row does not match the schema: field 'age'")
    assert schema.inputs["review"] == "[EMAIL] paid with [CARD]"
    assert (llm_failure.row_id, llm_failure.stage, llm_failure.inputs["review"]) == (
        "r0002",
        "llm",
        "[EMAIL] paid with [CARD]",
    )
    output = tmp_path / "output"
    assert (output / "elspeth-runs.sqlite").is_file()
    written = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file()}
    assert {"failures.csv", "results.csv", "results.jsonl", "summary.json", "elspeth-runs.sqlite"} <= set(written)
    for name, content in written.items():
        for value in PII_VALUES:
            assert value.encode() not in content, f"{value} is in {name}"
            assert value.replace(" ", "").encode() not in content, f"{value} is in {name}"


def test_a_reply_that_does_not_parse_is_in_the_failures_file_and_the_summary(run: Any, tmp_path: Path) -> None:
    replies = {"r0001": '=HYPERLINK("http://evil.example")', "r0002": "x" * 300}
    llm = {"plugin": "scripted", "options": {"replies": replies, "default": '{"label": "ok"}'}}
    run(settings({"json_fields": {"label": "label"}}, llm=llm, sinks=ALL_SINKS), rows=3)
    failures = {f["row_id"]: f for f in read_csv(tmp_path / "output/failures.csv")}
    assert failures["r0001"]["failure.output.response"] == '\'=HYPERLINK("http://evil.example")', "neutralised"
    assert failures["r0001"]["failure.error"].endswith("""; the reply was '=HYPERLINK("http://evil.example")'""")
    assert failures["r0002"]["failure.output.response"] == "x" * 300
    assert failures["r0002"]["failure.error"].endswith("; the reply began '" + "x" * 80 + "'...")
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    shown = {f["row_id"]: f["failure.output.response"] for f in summary["failures"]}
    assert shown == {"r0001": '=HYPERLINK("http://evil.example")', "r0002": "x" * 300}


@needs_processors
def test_every_processor_and_post_processor_summary_reaches_the_metadata_even_when_listed_twice(run: Any) -> None:
    data = "id,product,review\nr0000,kettle,ann@example.org or 4111 1111 1111 1111\nr0001,lamp,fine\n"
    reply = "call +44 20 7946 0958 or mail help@example.org"
    llm = {"plugin": "scripted", "options": {"default": reply}}
    post = [
        {"plugin": "pii_redaction", "options": {"columns": ["response"], "kinds": ["phone"]}},
        {"plugin": "pii_redaction", "options": {"columns": ["response"], "kinds": ["email"]}},
    ]
    processors = [
        {"plugin": "pii_redaction", "options": {"kinds": ["email"]}},
        {"plugin": "pii_redaction", "options": {"kinds": ["card"]}},
    ]
    result = run(settings({"post_processors": post}, llm=llm, processors=processors), data=data)
    assert [r.outputs["response"] for r in result.records] == ["call [PHONE] or mail [EMAIL]"] * 2
    extra = result.metadata.to_dict()
    found = {key: summary["found"] for key, summary in extra["processor"].items()}
    assert found == {"pii_redaction[0]": {"email": 1}, "pii_redaction[1]": {"card": 1}}
    found = {key: summary["found"] for key, summary in extra["post_processors"].items()}
    assert found == {"pii_redaction[0]": {"phone": 2}, "pii_redaction[1]": {"email": 2}}


@needs_processors
def test_a_post_processor_that_cannot_open_stops_the_run_naming_it(run: Any, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    post = [{"plugin": "upper", "options": {"column": "response"}}]
    post.append({"plugin": "schema_validation", "options": {"schema_path": "missing.json"}})
    with pytest.raises(
        RunFailed, match=r"post-processor 'schema_validation' \(orchestrator.options.post_processors\[1\]\)"
    ):
        run(settings({"post_processors": post}), rows=2)
    assert not [p for p in (tmp_path / "output").iterdir() if p.name.startswith(".")], "no spool is left behind"
