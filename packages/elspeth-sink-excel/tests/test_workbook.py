from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from pydantic import ValidationError

from elspeth import PluginContext, Record, RunMetadata, RunResult
from elspeth_sink_excel import ExcelSink

SHEETS = ["Results", "Failures", "Aggregates", "Comparisons", "Manifest"]


def rows_of(ws: Worksheet) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(values_only=True))


def as_dicts(ws: Worksheet) -> list[dict[str, Any]]:
    header, *rows = rows_of(ws)
    return [dict(zip(header, row, strict=True)) for row in rows]


def manifest(ws: Worksheet) -> dict[str, Any]:
    return {row[0]: row[1] for row in rows_of(ws)[1:] if not str(row[0]).startswith("Plugin (")}


def empty_result() -> RunResult:
    return RunResult([], [], {}, RunMetadata(run_id="run-0", name="empty", orchestrator="rows"))


def test_workbook_has_every_sheet_in_order(write_book: Any, experiment_result: RunResult) -> None:
    path, book = write_book(experiment_result)
    assert path.name == "results.xlsx"
    assert book.sheetnames == SHEETS


def test_results_have_readable_headers_and_one_row_per_record(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    header = rows_of(book["Results"])[0]
    assert header == (
        "Row ID",
        "Experiment",
        "id",
        "product",
        "review",
        "Response",
        "Latency (s)",
        "Prompt tokens",
        "Scores (default)",
        "Score flags (default)",
    )
    rows = as_dicts(book["Results"])
    assert [(r["Row ID"], r["Experiment"]) for r in rows] == [
        ("r0", "baseline"),
        ("r1", "baseline"),
        ("r0", "variant"),
        ("r1", "variant"),
    ]
    first = rows[0]
    assert first["product"] == "kettle"
    assert first["Response"] == "Score: 0.4"


def test_numbers_and_booleans_stay_numbers_and_booleans(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    row = as_dicts(book["Results"])[1]
    assert row["Prompt tokens"] == 51
    assert isinstance(row["Prompt tokens"], int)
    assert row["Scores (default)"] == pytest.approx(0.5)
    assert row["Score flags (default)"] is True
    ws = book["Results"]
    assert ws["H2"].data_type == "n", "a number must be stored as a number, or sums and charts break"


def test_failures_sheet_says_where_and_why(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    (failure,) = as_dicts(book["Failures"])
    assert failure == {
        "Row ID": "r9",
        "Experiment": "variant",
        "id": "r9",
        "product": "fridge",
        "review": "cold",
        "Stage": "llm",
        "Error": "TimeoutError: no reply after 30 s",
        "Attempts": 2,
        "Output": None,
    }


def test_aggregates_are_flattened_per_experiment_plugin_and_metric(
    write_book: Any, experiment_result: RunResult
) -> None:
    _, book = write_book(experiment_result)
    assert rows_of(book["Aggregates"])[0] == ("Experiment", "Baseline", "Plugin", "Metric", "Value")
    found = {(r["Experiment"], r["Plugin"], r["Metric"]): r["Value"] for r in as_dicts(book["Aggregates"])}
    assert found[("baseline", "score_stats", "criteria.default.mean")] == pytest.approx(0.45)
    assert found[("variant", "score_stats", "overall.pass_rate")] == pytest.approx(0.5)
    assert found[("variant", "run", "failed")] == 1
    assert found[("baseline", "run", "rows")] == 2
    baseline_flags = {r["Experiment"]: r["Baseline"] for r in as_dicts(book["Aggregates"])}
    assert baseline_flags == {"baseline": True, "variant": False}


def test_comparisons_are_flattened_per_variant_plugin_and_metric(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    assert as_dicts(book["Comparisons"]) == [
        {"Variant": "variant", "Baseline": "baseline", "Plugin": "mean_diff", "Metric": "default.diff", "Value": -0.05},
        {
            "Variant": "variant",
            "Baseline": "baseline",
            "Plugin": "mean_diff",
            "Metric": "default.p_value",
            "Value": 0.31,
        },
        {"Variant": "variant", "Baseline": "baseline", "Plugin": "mean_diff", "Metric": "verdict", "Value": "same"},
    ]


def test_manifest_records_the_run_sanitisation_and_plugins(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    facts = manifest(book["Manifest"])
    assert facts["Run ID"] == "run-1"
    assert facts["Name"] == "excel-test"
    assert facts["Started at"] == "2026-01-01T00:00:00+00:00"
    assert facts["Duration (s)"] == 2.5
    assert facts["Input rows"] == 3
    assert facts["Records"] == 4
    assert facts["Failures"] == 1
    assert facts["Security level"] == "OFFICIAL"
    assert facts["Formula sanitisation"] == "on"
    assert facts["Sanitisation guard"] == "'"
    assert facts["Experiments"] == "baseline, variant"
    assert facts["Cost (total)"] == 0.02
    plugins = [row for row in rows_of(book["Manifest"]) if str(row[0]).startswith("Plugin (")]
    assert ("Plugin (sink)", "excel", "elspeth-sink-excel", "0.1.0") in plugins
    assert ("Plugin (llm_client)", "mock", "elspeth-core", "0.1.0") in plugins


def test_manifest_leaves_out_a_security_level_the_run_did_not_have(write_book: Any) -> None:
    _, book = write_book(empty_result())
    assert "Security level" not in manifest(book["Manifest"])


def test_every_sheet_freezes_its_header_row(write_book: Any, experiment_result: RunResult) -> None:
    _, book = write_book(experiment_result)
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert all(cell.font.bold for cell in ws[1]), f"{ws.title}: header row should be bold"


def test_column_widths_fit_content_within_bounds(write_book: Any, experiment_result: RunResult) -> None:
    experiment_result.records[0].outputs["response"] = "word " * 2_000
    experiment_result.records[0].inputs = {**experiment_result.records[0].inputs, "id": "x"}
    _, book = write_book(experiment_result)
    ws = book["Results"]
    header = rows_of(ws)[0]
    widths = {name: ws.column_dimensions[get_column_letter(i)].width for i, name in enumerate(header, start=1)}
    assert widths["Response"] == 60, "a long text must not make a column wider than the screen"
    assert widths["id"] >= 8, "a short column keeps a usable width"
    assert widths["Score flags (default)"] >= len("Score flags (default)"), "headers stay readable"
    for sheet in book.worksheets:
        for dim in sheet.column_dimensions.values():
            assert 8 <= dim.width <= 60, f"{sheet.title} column {dim.index} width {dim.width} out of bounds"


def test_an_empty_result_still_gives_every_sheet_with_headers(write_book: Any) -> None:
    _, book = write_book(empty_result())
    assert book.sheetnames == SHEETS
    assert rows_of(book["Results"]) == [("Row ID",)]
    assert rows_of(book["Failures"])[0] == ("Row ID", "Stage", "Error", "Attempts", "Output")
    assert len(rows_of(book["Failures"])) == 1
    assert rows_of(book["Comparisons"]) == [("Variant", "Baseline", "Plugin", "Metric", "Value")]
    assert manifest(book["Manifest"])["Records"] == 0


def test_unicode_survives_and_wide_characters_widen_the_column(write_book: Any) -> None:
    text = "naïve café — 日本語 ✓ 🙂 עברית"
    result = RunResult(
        [Record(row_id="ü-1", inputs={"名前": text, "col": "日本語日本語日本語日本語"}, outputs={"response": text})],
        [],
        {},
        RunMetadata(run_id="run-ü", name="ユニコード", orchestrator="rows"),
    )
    _, book = write_book(result)
    (row,) = as_dicts(book["Results"])
    assert row == {"Row ID": "ü-1", "名前": text, "col": "日本語日本語日本語日本語", "Response": text}
    assert manifest(book["Manifest"])["Name"] == "ユニコード"
    assert book["Results"].column_dimensions["C"].width >= 24, "12 wide characters need about 24 columns"


def test_awkward_values_are_written_not_refused(write_book: Any) -> None:
    result = RunResult(
        [
            Record(
                row_id="r1",
                inputs={"ctrl": "bell\x07 and nul\x00", "nested": {"a": [1, 2]}, "huge": "x" * 40_000},
                outputs={"response": "line one\r\nline two\rline three"},
                metrics={"nan": float("nan"), "missing": None, "tags": ["a", "b"]},
            )
        ],
        [],
        {"weird": {"inf": float("inf")}},
        RunMetadata(run_id="run-x", name="x", orchestrator="rows"),
    )
    _, book = write_book(result)
    (row,) = as_dicts(book["Results"])
    assert row["ctrl"] == "bell\ufffd and nul\ufffd", "characters XML cannot hold are replaced, visibly"
    assert row["nested"] == '{"a": [1, 2]}'
    assert row["Response"] == "line one\nline two\nline three", "line breaks are kept, as line feeds"
    assert len(row["huge"]) == 32_767, "Excel holds 32,767 characters in a cell"
    assert row["huge"].endswith("[truncated]")
    assert row["Nan"] is None
    assert row["Missing"] is None
    assert row["Tags"] == '["a", "b"]'
    assert as_dicts(book["Aggregates"]) == [{"Plugin": "weird", "Metric": "inf", "Value": None}]


def test_write_is_atomic_and_replaces_the_previous_workbook(
    write_book: Any, experiment_result: RunResult, ctx: PluginContext
) -> None:
    write_book(empty_result())
    _, book = write_book(experiment_result)
    assert len(rows_of(book["Results"])) == 5
    assert sorted(p.name for p in Path(ctx.output_dir).iterdir()) == ["results.xlsx"], "no temporary file is left"


def test_a_failed_write_leaves_the_old_workbook_and_no_temporary_file(
    write_book: Any, experiment_result: RunResult, ctx: PluginContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = write_book(experiment_result)
    before = path.read_bytes()
    sink = ExcelSink(ExcelSink.Options())

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    from openpyxl import Workbook

    monkeypatch.setattr(Workbook, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        sink.write(empty_result(), ctx)
    assert path.read_bytes() == before
    assert sorted(p.name for p in Path(ctx.output_dir).iterdir()) == ["results.xlsx"]


def test_path_is_relative_to_the_output_folder_and_may_nest(write_book: Any, ctx: PluginContext) -> None:
    path, _ = write_book(empty_result(), path="reports/run.xlsx")
    assert path == (ctx.output_dir / "reports" / "run.xlsx").resolve()


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"path": "results.csv"}, "path", "must end in .xlsx"),
        ({"sanitize_guard": "=="}, "sanitize_guard", "exactly one character"),
        ({"sanitize_guard": "+"}, "sanitize_guard", "would not protect"),
        ({"sanitise_formulas": False}, "sanitise_formulas", "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ExcelSink.Options.model_validate(options)
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_no_warning_is_logged_when_neutralising(
    write_book: Any, experiment_result: RunResult, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        write_book(experiment_result)
    assert not caplog.records


def test_clashing_column_names_are_told_apart_not_overwritten(write_book: Any) -> None:
    result = RunResult(
        [Record("r1", inputs={"Response": "from the data", "Row ID": "7"}, outputs={"response": "from the LLM"})],
        [],
        {},
        RunMetadata(run_id="run-c", name="c", orchestrator="rows"),
    )
    _, book = write_book(result)
    (row,) = as_dicts(book["Results"])
    assert row == {
        "Row ID": "r1",
        "Row ID (input)": "7",
        "Response": "from the data",
        "Response (output)": "from the LLM",
    }


def test_a_run_too_large_for_excel_is_refused_before_writing(
    experiment_result: RunResult, ctx: PluginContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import elspeth_sink_excel.sink
    from elspeth import PluginError

    monkeypatch.setattr(elspeth_sink_excel.sink, "MAX_ROWS", 4)  # a header and 3 rows; the result has 4 records
    with pytest.raises(PluginError, match=r"sheet Results would have 4 rows.*use the csv or jsonl sink"):
        ExcelSink(ExcelSink.Options()).write(experiment_result, ctx)
    assert not Path(ctx.output_dir).exists() or not any(Path(ctx.output_dir).iterdir())
