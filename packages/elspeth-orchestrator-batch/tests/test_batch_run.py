"""The batch orchestrator run in-process through ``elspeth.engine``: mapping, failures, order, streaming."""

from __future__ import annotations

import csv
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import Failure, Record, RunResult, Spool
from elspeth.registry import Registry
from elspeth_testing.plugin import RunSettings, WriteSettings


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
    assert missing.error == "the reply's JSON has no 'score' (json_fields.score)"
    assert missing.output == {"response": '{"label": "x"}'}
    assert (not_json.row_id, not_json.stage) == ("r0002", "parse")
    assert not_json.error.startswith("the reply is not JSON")
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


def test_llm_failures_are_recorded_with_every_attempt_not_dropped(run: Any) -> None:
    llm = {"plugin": "scripted", "options": {"fail_rows": ["r0002", "r0004"], "jitter_ms": 10}}
    result = run(settings(llm=llm, retry={"max_attempts": 2, "initial_delay_s": 0}), rows=6)
    assert [r.row_id for r in result.records] == ["r0000", "r0001", "r0003", "r0005"]
    assert [f.row_id for f in result.failures] == ["r0002", "r0004"]
    failure = result.failures[0]
    assert failure.stage == "llm"
    assert "scripted failure for row r0002" in failure.error
    assert failure.inputs["review"] == "review number 2"
    assert result.metadata.rows == 6
    assert result.metadata.extra["failures_by_stage"] == {"llm": 2}


def test_metadata_totals_tokens_cost_and_timings(run: Any) -> None:
    cost = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1000, "output": 2000}}}}
    result = run(settings(cost_tracker=cost), rows=5)
    extra = result.metadata.extra
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
    assert "budget" in result.metadata.extra["stop_reason"]
    ids = [r.row_id for r in result.records]
    assert 0 < len(ids) < 200
    assert ids == sorted(ids), "what finished is still in input order"
    assert result.metadata.rows == len(ids) + len(result.failures)


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
