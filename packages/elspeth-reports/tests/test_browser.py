"""The visual report in headless Chromium: charts render, nothing errs, nothing executes, nothing is fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elspeth import PluginContext, RunResult
from elspeth_reports import VisualReportSink

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
EVIL = "".join(PAYLOADS)

CHART_BOXES = """
JSON.stringify(Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const box = svg.getBoundingClientRect();
  return {kind: svg.getAttribute('class'), width: box.width, height: box.height,
          parts: svg.querySelectorAll('rect, line, circle, path').length};
}))
"""
FOREST_ROWS = """
JSON.stringify(Array.from(document.querySelectorAll('svg.forest g.forest-row')).map(g => {
  const ci = g.querySelector('line.ci').getBoundingClientRect();
  const label = g.querySelector('text').getBoundingClientRect();
  return {variant: g.dataset.variant, criterion: g.dataset.criterion, ci_width: ci.width, label_width: label.width};
}))
"""


def write(result: RunResult, ctx: PluginContext) -> Path:
    (artifact,) = VisualReportSink(VisualReportSink.Options()).write(result, ctx)
    return artifact.path


def test_charts_render_with_no_console_error(
    browser_page: Any, experiment_result: RunResult, ctx: PluginContext, tmp_path: Path
) -> None:
    import json

    page = browser_page
    page.open(write(experiment_result, ctx))
    charts = json.loads(page.evaluate(CHART_BOXES))
    assert [c["kind"] for c in charts] == [
        "chart forest",
        "chart distribution",
        "chart distribution",
        "chart bars",
        "chart distribution",
    ]
    for chart in charts:
        assert chart["width"] > 300, chart
        assert chart["height"] > 60, chart
        assert chart["parts"] > 5, chart

    rows = json.loads(page.evaluate(FOREST_ROWS))
    assert [(r["variant"], r["criterion"]) for r in rows] == [
        ("strict", "default"),
        ("strict", "tone"),
        ("loose", "default"),
        ("loose", "tone"),
    ]
    assert all(r["ci_width"] > 5 and r["label_width"] > 10 for r in rows), rows
    zero = page.evaluate("document.querySelector('svg.forest line.zero').getBoundingClientRect().height")
    assert zero > 100, "the zero line spans the forest plot"

    text = page.evaluate("document.body.innerText")
    for words in ("Comparisons with the baseline", "Score distributions", "Cost and latency", "0 = no difference"):
        assert words in text, words
    lanes = page.evaluate(
        "Array.from(document.querySelectorAll('svg.distribution g.lane text')).map(t => t.textContent)"
    )
    assert lanes[:3] == ["baseline", "strict", "loose"]

    shot = page.screenshot(tmp_path / "visual_report.png")
    assert shot.stat().st_size > 20_000, "a screenshot of a page with charts is not blank"
    assert page.console_errors() == []
    assert page.dialogs() == []
    assert all(url.startswith("file://") for url in page.requested_urls()), page.requested_urls()


def test_injected_markup_does_not_execute(
    browser_page: Any, make_result: Any, ctx: PluginContext, tmp_path: Path
) -> None:
    result: RunResult = make_result(("baseline", f"v {EVIL}"))
    for record in result.records:
        record.inputs = {**record.inputs, "review": EVIL}
        record.metrics["scores"] = {EVIL: record.metrics["scores"]["default"]}
    result.failures[0].error = EVIL
    result.failures[0].row_id = f"r {EVIL}"
    result.metadata.name = f"run {EVIL}"
    for comp in result.aggregates["comparisons"].values():
        for plugin in comp.values():
            plugin["criteria"] = {EVIL: plugin["criteria"]["default"]}

    page = browser_page
    page.open(write(result, ctx))
    page.drain(0.5)
    assert page.dialogs() == [], "an alert() ran"
    assert page.evaluate("document.querySelectorAll('script, img, [onerror], [onload]').length") == 0
    text = page.evaluate("document.body.innerText")
    for payload in PAYLOADS:
        assert payload in text, "the payload is shown as text"
    assert page.evaluate("document.title") == f"Experiment report: run {EVIL}"
    assert page.evaluate("document.querySelectorAll('svg.forest g.forest-row').length") == 1
    page.screenshot(tmp_path / "injected.png")
    assert page.console_errors() == []
    assert all(url.startswith("file://") for url in page.requested_urls()), page.requested_urls()
