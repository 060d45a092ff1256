"""The reports' repeated-samples and breakdown sections, from the keys the experiment orchestrator writes."""

from __future__ import annotations

import json
from pathlib import Path

from elspeth import PluginContext, RunResult
from elspeth_reports import AnalyticsReportSink, VisualReportSink, build_summary

NAUGHTY = "<script>x</script>|"

EPOCHS = {
    "epochs": 5,
    "reducer": "pass_at_k",
    "k": 2,
    "criteria": {
        "default": {
            "rows": 12,
            "samples": 60,
            "within_row_variance": 0.04,
            "variance_of_row_means": 0.03,
            "between_row_variance": 0.022,
            "icc": 0.3548,
        }
    },
}
CLUSTERED = {
    "difference": -0.0421,
    "se": 0.0187,
    "df": 11,
    "clusters": 12,
    "observations": 120,
    "p_value": 0.046,
    "ci": [-0.0833, -0.0009],
    "cluster_by": "row",
    "p_adjusted": 0.092,
    "significant": False,
}


def _cell(difference: float, p: float | None, family: int = 2) -> dict[str, object]:
    return {
        "n": 6,
        "mean_difference": difference,
        "ci": [difference - 0.1, difference + 0.1],
        "p_adjusted": p,
        "family_size": family,
        "significant": p is not None and p < 0.05,
        "warning": None if p is not None else "too few scores to compare: 4 rows scored in both experiments",
    }


def _with_breakdowns(result: RunResult) -> RunResult:
    aggs = result.aggregates
    aggs["experiments"]["baseline"]["aggregates"]["epochs"] = EPOCHS
    aggs["comparisons"]["strict"]["score_significance"]["criteria"]["default"]["clustered"] = CLUSTERED
    stats = {"score_stats": {"overall": {"mean": 0.61, "pass_rate": 0.5}}}
    experiments = {n: {"succeeded": 6, "failed": 0, "aggregates": stats} for n in ("baseline", "strict")}
    aggs["groups"] = {
        "column": "lang",
        "min_rows": 5,
        "family": "per category: each comparison's p-values are adjusted within the category",
        "too_few": {NAUGHTY: 2},
        "categories": {
            "en": {
                "rows": 6,
                "experiments": experiments,
                "comparisons": {"strict": {"score_significance": {"criteria": {"default": _cell(0.125, 0.01)}}}},
            },
            "fr": {
                "rows": 6,
                "experiments": experiments,
                "comparisons": {"strict": {"score_significance": {"criteria": {"default": _cell(0.0, None)}}}},
            },
            NAUGHTY: {"rows": 2, "experiments": experiments, "comparisons": None, "note": "2 rows: not compared"},
        },
    }
    return result


def test_the_summary_carries_epochs_and_groups(experiment_result: RunResult) -> None:
    summary = build_summary(_with_breakdowns(experiment_result))
    assert summary["epochs"]["experiments"] == [{"name": "baseline", **EPOCHS}]
    assert summary["epochs"]["clustered"][0]["variant"] == "strict"
    groups = summary["groups"]
    assert [c["category"] for c in groups["categories"]] == ["en", "fr", NAUGHTY]
    assert groups["categories"][0]["comparisons"][0]["p_adjusted"] == 0.01
    assert groups["categories"][2]["comparisons"] is None
    assert groups["too_few"] == {NAUGHTY: 2}


def test_a_run_without_them_has_neither(experiment_result: RunResult) -> None:
    summary = build_summary(experiment_result)
    assert summary["epochs"] is None
    assert summary["groups"] is None


def test_the_markdown_and_html_sections_state_what_the_figures_are(
    experiment_result: RunResult, ctx: PluginContext
) -> None:
    result = _with_breakdowns(experiment_result)
    sink = AnalyticsReportSink(AnalyticsReportSink.Options.model_validate({"formats": ["md", "json"]}))
    files = {a.path.suffix: a.path for a in sink.write(result, ctx)}
    markdown = files[".md"].read_text(encoding="utf-8")
    assert "## Repeated samples (epochs)" in markdown
    assert "| baseline | default | 5 | pass_at_k (k = 2) | 12 | 0.04 | 0.022 | 0.355 |" in markdown
    assert "| strict | default | row | 12 | \u22120.0421 | 0.0187 | [\u22120.0833, \u22120.0009] | 0.092 |" in markdown
    assert "## By lang" in markdown
    assert "Multiple testing: per category" in markdown
    assert "| en | strict | default | +0.125 | [+0.025, +0.225] | 0.010 (family of 2), significant |" in markdown
    assert "too few scores to compare: 4 rows scored in both experiments" in markdown
    assert "<script>" not in markdown
    assert "&lt;script&gt;x&lt;/script&gt;\\| (2 rows)" in markdown
    assert json.loads(files[".json"].read_text(encoding="utf-8"))["groups"]["column"] == "lang"

    visual = VisualReportSink(VisualReportSink.Options.model_validate({"path": "page.html"}))
    (page,) = [a.path for a in visual.write(result, ctx)]
    html = Path(page).read_text(encoding="utf-8")
    assert "<h2>Repeated samples (epochs)</h2>" in html
    assert "<h2>By lang</h2>" in html
    assert "<script>x" not in html
    assert "&lt;script&gt;x&lt;/script&gt;|" in html
