"""The visual report's file: one self-contained page whose run data is always text, never markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import PluginContext, RunResult
from elspeth_reports import VisualReportSink
from elspeth_testing import UNICODE_TEXT, sample_run_result

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>"]
EVIL = "".join(PAYLOADS)


class Markup(HTMLParser):
    """Every start tag with its attributes, and the page's text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Markup:
    parser = Markup()
    parser.feed(html)
    parser.close()
    return parser


def write(result: RunResult, ctx: PluginContext, **options: Any) -> str:
    sink = VisualReportSink(VisualReportSink.Options.model_validate(options))
    (artifact,) = sink.write(result, ctx)
    assert artifact.media_type == "text/html"
    return artifact.path.read_text(encoding="utf-8")


def evil_result(make_result: Any) -> RunResult:
    """Payloads in experiment names, criteria, inputs, outputs, errors, stages, the run's name and its aggregates."""
    result: RunResult = make_result(("baseline", f"v {EVIL}"))
    for record in result.records:
        record.inputs = {**record.inputs, "review": EVIL}
        record.outputs = {"response": EVIL}
        record.metrics["scores"] = {EVIL: record.metrics["scores"]["default"]}
    failure = result.failures[0]
    failure.error, failure.stage, failure.row_id = EVIL, f"llm {EVIL}", f"r {EVIL}"
    result.metadata.name = f"run {EVIL}"
    result.metadata.security_level = EVIL
    for comp in result.aggregates["comparisons"].values():
        for plugin in comp.values():
            plugin["criteria"] = {EVIL: plugin["criteria"]["default"]}
        comp["score_significance"]["criteria"][EVIL]["power"]["warning"] = EVIL
    exp = result.aggregates["experiments"][f"v {EVIL}"]
    exp["aggregates"]["score_recommendation"]["reason"] = EVIL
    exp["early_stop"] = {"plugin": "threshold", "reason": EVIL}
    return result


def test_the_page_is_self_contained_and_runs_no_script(experiment_result: RunResult, ctx: PluginContext) -> None:
    page = write(experiment_result, ctx)
    markup = parse(page)
    tags = {tag for tag, _ in markup.tags}
    assert "script" not in tags
    assert not tags & {"link", "img", "iframe", "object", "embed"}, "nothing is loaded from anywhere"
    assert not re.search(r"(?i)\b(?:src|href)\s*=", page), "no attribute points to another resource"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page), "no URL but the SVG namespace"
    csp = next(a["content"] for t, a in markup.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None
    assert "default-src 'none'" in csp


def test_the_page_has_every_chart_and_table(experiment_result: RunResult, ctx: PluginContext) -> None:
    page = write(experiment_result, ctx)
    markup = parse(page)
    charts = [a.get("data-chart") for t, a in markup.tags if t == "figure"]
    assert charts == ["forest", "scores", "scores", "cost", "latency"], "forest, one per criterion, cost, latency"
    forest_rows = [
        (a["data-variant"], a["data-criterion"]) for t, a in markup.tags if "forest-row" in (a.get("class") or "")
    ]
    assert forest_rows == [("strict", "default"), ("strict", "tone"), ("loose", "default"), ("loose", "tone")]
    lanes = [a["data-group"] for t, a in markup.tags if a.get("class") == "lane"]
    assert lanes[:3] == ["baseline", "strict", "loose"], "score lanes in experiment order"
    text = " ".join(markup.text)
    for words in (
        "Experiment report: report-test",
        "Paired differences from the baseline",
        "lower than the baseline by 0.05 (CI [\u22120.12, \u22120.02]); significant after Holm",
        "P(variant better) = 7.8%",
        "Collect more data before deciding.",
        "Power — default: 12 pairs is below the 70 needed",
        "Stopped early — loose: mean of cost is 0.1, gte 0.1",
        "LLMCallFailed: RateLimitError: 429 (gave up after 3 attempts)",
        "0.00720 USD",
    ):
        assert words in text, words


def test_a_run_without_comparisons_or_scores(ctx: PluginContext) -> None:
    page = write(sample_run_result(), ctx, title="Nightly batch")
    markup = parse(page)
    text = " ".join(markup.text)
    assert "Nightly batch" in text
    assert "No record carries scores in the metric scores." in text
    assert "Comparisons with the baseline" not in text
    assert "score.mean" in text, "a plain run's aggregates are listed"
    assert UNICODE_TEXT in text


def test_a_single_experiment_says_there_is_nothing_to_compare(make_result: Any, ctx: PluginContext) -> None:
    text = " ".join(parse(write(make_result(("only",)), ctx)).text)
    assert "No variant was compared with a baseline in this run." in text


def test_injected_markup_stays_text(make_result: Any, ctx: PluginContext) -> None:
    page = write(evil_result(make_result), ctx)
    markup = parse(page)
    tags = {tag for tag, _ in markup.tags}
    assert not tags & {"script", "img"}, f"a payload became an element: {tags}"
    for tag, attrs in markup.tags:
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> got event handler attributes {handlers}"
    for payload in PAYLOADS:
        assert payload not in page, f"unescaped in the file: {payload}"
    text = "".join(markup.text)
    for payload in PAYLOADS:
        assert payload in text, "the payload is shown to the reader as text"
    assert any(a.get("data-variant") == f"v {EVIL}" for _, a in markup.tags), "attributes keep the exact value"


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"path": "report.pdf"}, "path", "must end in .html"),
        ({"failure_examples": -2}, "failure_examples", "greater than or equal to 0"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        VisualReportSink.Options.model_validate(options)
    (error,) = caught.value.errors()
    assert error["loc"][0] == field
    assert words in str(caught.value)


def test_writes_into_a_subfolder(experiment_result: RunResult, ctx: PluginContext) -> None:
    sink = VisualReportSink(VisualReportSink.Options(path="reports/run.html"))
    (artifact,) = sink.write(experiment_result, ctx)
    assert artifact.path == Path(ctx.output_dir).resolve() / "reports" / "run.html"


def _forest(page: str) -> tuple[str, list[tuple[str | None, str | None]], str]:
    markup = parse(page)
    rows = [
        (a.get("data-criterion"), a.get("data-design"))
        for _, a in markup.tags
        if "forest-row" in (a.get("class") or "")
    ]
    title = re.search(r'<svg class="chart forest"[^>]*aria-label="([^"]*)"', page)
    assert title is not None
    return title.group(1), rows, " ".join(markup.text)


def _set_design(result: RunResult, variant: str, criterion: str, design: str) -> None:
    for plugin in result.aggregates["comparisons"][variant].values():
        plugin["criteria"][criterion]["design"] = design


@pytest.mark.parametrize(
    ("unpaired", "title"),
    [
        ((), "Paired differences from the baseline"),
        ((("strict", "tone"),), "Differences from the baseline (paired and unpaired)"),
        (
            tuple((v, c) for v in ("strict", "loose") for c in ("default", "tone")),
            "Differences of means from the baseline (unpaired)",
        ),
    ],
)
def test_the_forest_plot_says_which_lines_are_paired(
    make_result: Any, ctx: PluginContext, unpaired: tuple[tuple[str, str], ...], title: str
) -> None:
    result = make_result()
    for variant, criterion in unpaired:
        _set_design(result, variant, criterion, "unpaired")
    shown, rows, text = _forest(write(result, ctx))
    assert shown == title
    assert [d for _, d in rows].count("unpaired") == len(unpaired)
    assert ("Lines marked unpaired" in text) is bool(unpaired)
    assert text.count("unpaired · p adj") == 2 * len(unpaired), "each Welch line says so, beside it and in its tip"


def test_the_comparison_table_is_the_one_the_markdown_report_shows(
    experiment_result: RunResult, ctx: PluginContext, tmp_path: Path
) -> None:
    from elspeth_reports import AnalyticsReportSink

    html = write(experiment_result, ctx)
    tables = re.findall(r"<table[^>]*>(.*?)</table>", html, re.S)
    comparison = next(t for t in tables if "Cliff" in t)
    headers = [parse(h).text[0] for h in re.findall(r"<th>.*?</th>", comparison)]
    assert headers[4] == "CI"  # no level in the figures: named as the Markdown report names it
    assert headers[7] == "Holm"  # the correction that adjusted the p values, not a generic "p adjusted"
    assert "\u22120.25 (small)" in parse(comparison).text  # Cliff's delta with its label

    sink = AnalyticsReportSink(AnalyticsReportSink.Options.model_validate({"formats": ["md"]}))
    (md_file,) = sink.write(experiment_result, ctx)
    md_header = next(line for line in md_file.path.read_text(encoding="utf-8").splitlines() if "Cliff" in line)
    assert [cell.strip() for cell in md_header.strip("|").split("|")] == headers
