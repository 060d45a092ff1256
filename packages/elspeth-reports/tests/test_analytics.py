"""The analytics report as a reader meets it: the JSON figures and the Markdown text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import elspeth_reports
from elspeth import PluginContext, RunResult
from elspeth_reports import AnalyticsReportSink
from elspeth_testing import UNICODE_TEXT, sample_run_result


def write(result: RunResult, ctx: PluginContext, **options: Any) -> dict[str, Path]:
    sink = AnalyticsReportSink(AnalyticsReportSink.Options.model_validate(options))
    return {a.path.suffix: a.path for a in sink.write(result, ctx)}


def report(result: RunResult, ctx: PluginContext, **options: Any) -> tuple[dict[str, Any], str]:
    files = write(result, ctx, **options)
    return json.loads(files[".json"].read_text(encoding="utf-8")), files[".md"].read_text(encoding="utf-8")


def test_both_formats_are_written_by_default(experiment_result: RunResult, ctx: PluginContext) -> None:
    files = write(experiment_result, ctx)
    assert sorted(files) == [".json", ".md"]
    assert files[".json"].name == "analytics_report.json"


def test_one_format_and_a_subfolder(experiment_result: RunResult, ctx: PluginContext) -> None:
    files = write(experiment_result, ctx, formats=["md"], file_stem="reports/weekly")
    assert list(files) == [".md"]
    assert files[".md"] == ctx.output_dir.resolve() / "reports" / "weekly.md"
    assert not list(ctx.output_dir.rglob("*.json"))


def test_rows_failures_retries_early_stop_and_cost(experiment_result: RunResult, ctx: PluginContext) -> None:
    doc, md = report(experiment_result, ctx)
    assert doc["rows"] == {"input_rows": 13, "records": 36, "failures": 1, "not_run": 0}
    assert doc["failures"]["by_stage"] == {"llm": 1}
    (example,) = doc["failures"]["examples"]
    assert example == {
        "row_id": "r99",
        "experiment": "loose",
        "stage": "llm",
        "error": "LLMCallFailed: RateLimitError: 429 (gave up after 3 attempts)",
        "attempts": 3,
    }
    retries = doc["retries"]
    assert (retries["failed_rows_retried"], retries["failed_row_retries"]) == (1, 2)
    assert retries["records_retried"] == 3, "one record per experiment carries validation_retries: 1"
    assert doc["early_stop"]["loose"]["reason"] == "mean of cost is 0.1, gte 0.1"
    assert doc["cost"]["run"]["total"] == pytest.approx(0.0072)
    assert doc["cost"]["run"]["currency"] == "USD"
    assert doc["cost"]["experiments"]["strict"]["total"] == pytest.approx(0.0024)
    assert "Total cost | 0.00720 USD" in md
    assert "| r99 | loose | llm | 3 | LLMCallFailed: RateLimitError: 429 (gave up after 3 attempts) |" in md
    assert "Retries: 2 extra attempts on 1 failed row; 3 retries on 3 finished rows." in md
    assert "- **loose**: mean of cost is 0.1, gte 0.1" in md


def test_only_the_first_failures_are_shown(ctx: PluginContext) -> None:
    result = sample_run_result(failures=8)
    doc, md = report(result, ctx, failure_examples=3)
    assert doc["failures"]["count"] == 8
    assert [f["row_id"] for f in doc["failures"]["examples"]] == ["first-failed-0", "first-failed-1", "first-failed-2"]
    assert "First 3 of 8:" in md
    assert "first-failed-3" not in md


def test_comparisons_carry_every_key_figure(experiment_result: RunResult, ctx: PluginContext) -> None:
    doc, md = report(experiment_result, ctx)
    assert [c["variant"] for c in doc["comparisons"]] == ["strict", "loose"]
    strict = doc["comparisons"][0]
    assert strict["baseline"] == "baseline"
    cell = {row["criterion"]: row for row in strict["criteria"]}["default"]
    freq, bayes = cell["frequentist"], cell["bayes"]
    assert freq["mean_difference"] == pytest.approx(-0.05)
    assert freq["ci"] == pytest.approx([-0.12, -0.02])
    assert (freq["p_value"], freq["p_adjusted"], freq["correction"]) == (0.0156, 0.0311, "holm")
    assert freq["significant"] is True
    assert (freq["cohens_d"], freq["cliffs_delta"], freq["cliffs_label"]) == (-0.34, -0.25, "small")
    assert "below the 70 needed" in freq["power_warning"]
    assert bayes["prob_variant_better"] == 0.078
    assert bayes["credible_interval"] == pytest.approx([-0.13, -0.03])
    assert bayes["pass_rate"]["prob_variant_better"] == 0.08

    assert "### strict vs baseline" in md
    assert (
        "- **default**: lower than the baseline by 0.05 (CI [\u22120.12, \u22120.02]); significant after Holm "
        "(p = 0.016, adjusted 0.031); P(variant better) = 7.8%" in md
    )
    assert (
        "| default | paired | 12 | \u22120.05 | [\u22120.12, \u22120.02] | paired t-test | 0.016 | 0.031 | yes |" in md
    )
    assert "- default: 12 pairs is below the 70 needed for 80% power at effect 0.34" in md


def test_recommendation_per_experiment(experiment_result: RunResult, ctx: PluginContext) -> None:
    doc, md = report(experiment_result, ctx)
    rec = doc["recommendations"]["baseline"]
    assert rec["recommendation"] == "Collect more data before deciding."
    assert "- **baseline**: Collect more data before deciding. (only 12 scores, fewer than the 30" in md
    assert "  - caveat: criteria are pooled" in md


def test_a_comparison_that_failed_is_reported_not_lost(experiment_result: RunResult, ctx: PluginContext) -> None:
    experiment_result.aggregates["comparisons"]["strict"]["score_bayes"] = {"error": "ValueError: no spread"}
    experiment_result.aggregates["comparisons"]["strict"]["my_plugin"] = {"uplift": 0.3}
    doc, md = report(experiment_result, ctx)
    strict = doc["comparisons"][0]
    assert strict["errors"] == {"score_bayes": "ValueError: no spread"}
    assert strict["other"] == {"my_plugin": {"uplift": 0.3}}
    assert "- score\\_bayes failed" not in md
    assert "- score_bayes failed: ValueError: no spread" in md
    assert 'Other figures from my_plugin: {"uplift": 0.3}' in md


def test_single_experiment_run_has_no_comparisons(make_result: Any, ctx: PluginContext) -> None:
    doc, md = report(make_result(("only",)), ctx)
    assert doc["comparisons"] == []
    assert [e["name"] for e in doc["experiments"]] == ["only"]
    assert "No variant was compared with a baseline in this run." in md
    assert "| only (baseline) | 13 | 12 | 1 | 0 |" in md


def test_a_run_without_comparison_plugins(experiment_result: RunResult, ctx: PluginContext) -> None:
    experiment_result.aggregates["comparisons"] = {"strict": {}, "loose": {}}
    doc, md = report(experiment_result, ctx)
    assert [c["criteria"] for c in doc["comparisons"]] == [[], []]
    assert "### strict vs baseline" in md


def test_a_result_that_is_not_an_experiments(ctx: PluginContext) -> None:
    doc, md = report(sample_run_result(), ctx)
    assert doc["experiments"] == []
    assert doc["comparisons"] == []
    assert doc["aggregates"] == {"score": {"mean": 0.25, "by_group": {"a": 0.5, "b": None}}}
    assert doc["cost"]["run"]["total"] == 0.0125
    assert "| score.mean | 0.25 |" in md
    assert "## Experiments" not in md
    assert UNICODE_TEXT in md, "non-ASCII text in errors survives"


def test_sections_can_be_left_out(experiment_result: RunResult, ctx: PluginContext) -> None:
    doc, md = report(
        experiment_result, ctx, include_metadata=False, include_aggregates=False, include_comparisons=False
    )
    assert "metadata" not in doc
    assert "comparisons" not in doc
    assert "aggregates" not in doc["experiments"][0]
    assert "Comparisons with the baseline" not in md


def test_metadata_is_kept(experiment_result: RunResult, ctx: PluginContext) -> None:
    doc, _ = report(experiment_result, ctx)
    assert doc["metadata"]["security_level"] == "OFFICIAL"
    assert doc["run"]["security_level"] == "OFFICIAL"
    assert doc["report"]["generator"] == f"elspeth-reports {elspeth_reports.__version__}"


def test_markdown_cannot_carry_html_or_break_a_table(make_result: Any, ctx: PluginContext) -> None:
    evil = "<script>alert(1)</script>|x](http://127.0.0.1/steal)"
    result = make_result(("base", evil))
    result.failures[0].error = f"boom {evil}\nsecond line"
    _, md = report(result, ctx)
    assert "<script>" not in md
    assert "](http" not in md, "run data must not become a link"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|x]\\(http://127.0.0.1/steal)" in md
    failure_line = next(line for line in md.splitlines() if line.startswith("| r99 |"))
    assert failure_line.count(" | ") == 4, "a pipe or newline in the error must not add table cells"


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"formats": ["pdf"]}, "formats", "'json' or 'md'"),
        ({"formats": []}, "formats", "at least 1"),
        ({"file_stem": "report.json"}, "file_stem", "without extension"),
        ({"failure_examples": -1}, "failure_examples", "greater than or equal to 0"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AnalyticsReportSink.Options.model_validate(options)
    (error,) = caught.value.errors()
    assert error["loc"][0] == field
    assert words in str(caught.value)


def test_gates_come_first_in_the_markdown_and_are_in_the_json(experiment_result: RunResult, ctx: PluginContext) -> None:
    from elspeth import GateResult

    experiment_result.metadata.gates = [
        GateResult("mean >= 0.5", True, "strict: mean 0.61 >= 0.5", {"strict.mean": 0.61, "at_least": 0.5}),
        GateResult("cost <= 1", False, "cost 1.2 > 1 over 36 rows | <b>", {"cost": 1.2, "at_most": 1.0}),
    ]
    data, text = report(experiment_result, ctx)
    assert [g["passed"] for g in data["gates"]] == [True, False]
    assert data["gates"][1]["figures"] == {"cost": 1.2, "at_most": 1.0}
    assert text.index("## Gates") < text.index("## Recommendations")
    assert "1 of 2 gates failed." in text
    # the text is run data, made inert (HTML-escaped, pipes escaped); the verdict is the report's own bold
    assert "| mean &gt;= 0.5 | passed | strict: mean 0.61 &gt;= 0.5 |" in text
    assert "| cost &lt;= 1 | **FAILED** | cost 1.2 &gt; 1 over 36 rows \\| &lt;b&gt; |" in text


def test_a_run_without_gates_has_no_gates_section(experiment_result: RunResult, ctx: PluginContext) -> None:
    data, text = report(experiment_result, ctx)
    assert data["gates"] == []
    assert "## Gates" not in text
