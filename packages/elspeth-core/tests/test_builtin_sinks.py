"""The ``csv``, ``jsonl`` and ``json`` sinks: the sink contract, then what each writes."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from elspeth import Failure, PluginContext, Record, RunMetadata, RunResult
from elspeth.builtins.sinks import CsvSink, JsonlSink, JsonSummarySink
from elspeth_testing import UNICODE_TEXT, SinkContract, run_async, sample_run_result


class TestCsvSinkContract(SinkContract):
    plugin_class = CsvSink


class TestCsvSinkWithFailuresContract(SinkContract):
    plugin_class = CsvSink

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"path": "deep/er/results.csv", "failures_path": "failures.csv"}


class TestJsonlSinkContract(SinkContract):
    plugin_class = JsonlSink


class TestJsonSummarySinkContract(SinkContract):
    plugin_class = JsonSummarySink

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"include_records": True}


class TestJsonSummaryWithoutRecordsContract(SinkContract):
    plugin_class = JsonSummarySink
    writes_records = False


def write(sink: Any, result: RunResult, ctx: PluginContext) -> list[Any]:
    from elspeth import invoke

    return list(run_async(invoke(sink.write, result, ctx)))


def test_csv_flattens_nested_metrics_and_keeps_text_exactly(plugin_context: PluginContext) -> None:
    sink = CsvSink(CsvSink.Options(path="r.csv", failures_path="f.csv"))
    results, failures = write(sink, sample_run_result("x", records=2, failures=1), plugin_context)
    with results.path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["row_id"] for r in rows] == ["x-0", "x-1"]
    assert rows[1]["text"] == f"{UNICODE_TEXT} #1"
    assert rows[1]["note"] == 'a, "quoted"\nsecond line'
    assert rows[1]["tokens.prompt"] == "11"
    assert rows[1]["cost"] == ""  # None is an empty cell, not the word "None"
    with failures.path.open(encoding="utf-8", newline="") as handle:
        (failure,) = list(csv.DictReader(handle))
    assert failure["failure.stage"] == "llm"
    assert failure["failure.attempts"] == "2"


def test_csv_prefixes_an_output_whose_name_is_an_input(plugin_context: PluginContext) -> None:
    record = Record("1", {"answer": "in"}, outputs={"answer": "out"}, metrics={"answer": 3})
    result = RunResult([record], [], {}, RunMetadata("r", "n", "o"))
    (artifact,) = write(CsvSink(CsvSink.Options()), result, plugin_context)
    with artifact.path.open(encoding="utf-8", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row == {"row_id": "1", "answer": "in", "output.answer": "out", "metric.answer": "3"}


def test_csv_of_an_empty_result_has_a_header(plugin_context: PluginContext) -> None:
    (artifact,) = write(CsvSink(CsvSink.Options()), sample_run_result(records=0, failures=0), plugin_context)
    assert artifact.path.read_bytes() == b"row_id\r\n"


def test_jsonl_writes_records_then_failures_with_status(plugin_context: PluginContext) -> None:
    (artifact,) = write(JsonlSink(JsonlSink.Options()), sample_run_result("j", records=2), plugin_context)
    lines = [json.loads(line) for line in artifact.path.read_text(encoding="utf-8").splitlines()]
    assert [(d["status"], d["row_id"]) for d in lines] == [("ok", "j-0"), ("ok", "j-1"), ("failed", "j-failed-0")]
    assert lines[1]["metrics"]["tokens"] == {"prompt": 11, "completion": 5}
    assert lines[2]["error"].startswith("TimeoutError")
    assert len(lines[2]["attempts"]) == 2


def test_jsonl_can_leave_failures_out(plugin_context: PluginContext) -> None:
    sink = JsonlSink(JsonlSink.Options(include_failures=False))
    (artifact,) = write(sink, sample_run_result(records=1), plugin_context)
    assert [json.loads(line)["status"] for line in artifact.path.read_text(encoding="utf-8").splitlines()] == ["ok"]


def test_json_writes_nan_and_infinity_as_null(plugin_context: PluginContext) -> None:
    result = RunResult(
        [Record("1", {}, metrics={"score": float("nan")})],
        [Failure("2", {}, "llm", "boom")],
        {"mean": float("inf")},
        RunMetadata("r", "n", "o"),
    )
    (artifact,) = write(JsonSummarySink(JsonSummarySink.Options(include_records=True)), result, plugin_context)
    doc = json.loads(artifact.path.read_text(encoding="utf-8"))  # strict JSON: NaN would fail to parse elsewhere
    assert "NaN" not in artifact.path.read_text(encoding="utf-8")
    assert doc["aggregates"] == {"mean": None}
    assert doc["records"][0]["score"] is None
    assert doc["failures"][0]["failure.error"] == "boom"


def test_json_summary_holds_metadata_and_aggregates(plugin_context: PluginContext) -> None:
    (artifact,) = write(JsonSummarySink(JsonSummarySink.Options()), sample_run_result("m"), plugin_context)
    doc = json.loads(artifact.path.read_text(encoding="utf-8"))
    assert doc["metadata"]["run_id"] == "run-m"
    assert doc["metadata"]["cost"] == {"total": 0.0125, "currency": "USD"}
    assert doc["aggregates"]["score"]["by_group"] == {"a": 0.5, "b": None}
    assert "records" not in doc
    assert UNICODE_TEXT in doc["failures"][0]["text"]


def test_a_failed_write_leaves_the_old_file_whole(plugin_context: PluginContext) -> None:
    sink = JsonlSink(JsonlSink.Options())
    (artifact,) = write(sink, sample_run_result("old"), plugin_context)
    before = artifact.path.read_bytes()
    broken = sample_run_result("new")
    broken.records.append(Record("bad", {"x": _Unprintable()}))
    with pytest.raises(RuntimeError, match="cannot be printed"):
        write(sink, broken, plugin_context)
    assert artifact.path.read_bytes() == before
    assert sorted(p.name for p in plugin_context.output_dir.iterdir()) == ["results.jsonl"]


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot be printed")


def test_a_failed_rows_cost_and_output_reach_the_csv_and_jsonl_files(plugin_context: PluginContext) -> None:
    failed = Failure(
        "7",
        {"text": "hi"},
        stage="validation",
        error="reply did not match",
        attempts=[{"attempt": 1, "error": "reply did not match"}],
        output={"response": "=1+1"},
        metrics={"cost": 0.25, "tokens": {"prompt": 9}},
    )
    result = RunResult([], [failed], {}, RunMetadata("r", "n", "o"))
    _, failures = write(CsvSink(CsvSink.Options(failures_path="f.csv")), result, plugin_context)
    with failures.path.open(encoding="utf-8", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["failure.output.response"] == "'=1+1"  # neutralised like any other cell
    assert row["failure.metric.cost"] == "0.25"
    assert row["failure.metric.tokens.prompt"] == "9"
    (artifact,) = write(JsonlSink(JsonlSink.Options()), result, plugin_context)
    (line,) = [json.loads(x) for x in artifact.path.read_text(encoding="utf-8").splitlines()]
    assert line["metrics"] == {"cost": 0.25, "tokens": {"prompt": 9}}
    assert line["outputs"] == {"response": "=1+1"}
