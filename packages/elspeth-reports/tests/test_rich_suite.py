"""A real suite read as an analyst reads it: several variants, failures, gates, judges, TOST and a sequential stop.

The experiment's calls go to the offline ``mock`` client (a variant with a higher score range has a
real effect, one with another seed has none, one with a validator that rejects low scores fails rows);
both judges go through the openai client to the LLM test server on 127.0.0.1 and are priced in EUR.
Every assertion reads the Markdown or the HTML a person would read, and checks it against the
figures in ``summary.json``, so a report that loses a figure or prints the same advice for every
variant fails.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from elspeth_testing import run_cli

pytest.importorskip("elspeth_experiment", reason="the suite needs elspeth-orchestrator-experiment")
pytest.importorskip("elspeth_judges", reason="the suite needs elspeth-judges")
pytest.importorskip("elspeth_llm_openai", reason="the judges call the test server through elspeth-llm-openai")

KEY = "sk-rich-suite"
SETTINGS = """
name: rich-suite
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock, options: {seed: 7, latency_ms: 2}}
cost_tracker: {plugin: price_table, options: {currency: EUR, prices: {'*': {input: 1.0, output: 2.0}}}}
prompts:
  user: "Product: {{ product }}\\nReview: {{ review }}\\nReply Score: N."
concurrency: 8
orchestrator:
  plugin: experiment
  options:
    row_plugins:
      - {plugin: score_extractor, options: {threshold: 0.6}}
      - {plugin: rubric_judge, options: {rubric: 'Is the answer useful?', threshold: 4, json_schema: true, llm: JUDGE}}
    aggregators: [score_stats, cost_summary, latency_summary, score_recommendation, judge_cost]
    comparisons:
      - {plugin: score_significance, options: {margin: 0.05}}
      - score_bayes
      - {plugin: pairwise_judge, options: {seed: 7, json_schema: true, llm: JUDGE}}
    early_stop:
      - {plugin: sequential, options: {metric: scores.default, alpha: 0.05, min_rows: 20}}
    validation_retries: 0
    gates:
      - {gate: no_regression}
      - {gate: pass_rate, at_least: 0.6, experiments: [better]}
      - {gate: cost, at_most: 0.5}
    experiments:
      - {name: baseline, baseline: true}
      - {name: better, llm_options: {score_min: 0.65, score_max: 0.95}}
      - {name: same, llm_options: {seed: 11}}
      - name: strict
        validators: [{plugin: regex_match, options: {pattern: 'Score: 0\\.[5-9].*', flags: [DOTALL]}}]
sinks:
  - {plugin: json, options: {path: summary.json}}
  - {plugin: analytics_report, options: {file_stem: analytics}}
  - {plugin: visual_report, options: {path: visual.html}}
output_dir: output
"""


class Text(HTMLParser):
    """The page's visible text (no style, no SVG title), and each SVG chart's axis labels."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.axes: dict[str, list[str]] = {}
        self._stack: list[str] = []
        self._chart: str | None = None
        self._in_axis = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._stack.append(tag)
        if tag == "figure":
            self._chart = found.get("data-chart")
        if tag == "g" and found.get("class") == "axis":
            self._in_axis = len(self._stack)

    def handle_endtag(self, tag: str) -> None:
        if self._in_axis == len(self._stack):
            self._in_axis = 0
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._stack or self._stack[-1] in ("style", "title"):
            return
        if self._in_axis and self._chart:
            self.axes.setdefault(self._chart, []).append(data.strip())
        self.text.append(data)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from elspeth_testing.llm_server import LLMTestServer

    project = tmp_path_factory.mktemp("rich")
    with (project / "data.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "product", "review"])
        writer.writerows([f"r{i:03d}", f"product {i % 7}", f"review number {i}"] for i in range(60))
    with LLMTestServer() as server:
        server.configure(api_key=KEY)
        judge = json.dumps(
            {"plugin": "openai", "options": {"model": "gpt-4o-mini", "base_url": server.openai_base_url}}
        ).replace("}}", ', "api_key_env": "RICH_KEY"}}')
        (project / "settings.yaml").write_text(SETTINGS.replace("JUDGE", judge), encoding="utf-8")
        done = run_cli("run", "settings.yaml", cwd=project, env={"RICH_KEY": KEY}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = project / "output"
    page = Text()
    page.feed((out / "visual.html").read_text(encoding="utf-8"))
    return {
        "truth": json.loads((out / "summary.json").read_text(encoding="utf-8")),
        "md": (out / "analytics.md").read_text(encoding="utf-8"),
        "html": " ".join(" ".join(page.text).split()),
        "axes": page.axes,
        "page": out / "visual.html",
    }


def _cell(suite: dict[str, Any], variant: str) -> dict[str, Any]:
    cell: dict[str, Any] = suite["truth"]["aggregates"]["comparisons"][variant]["score_significance"]
    return cell["criteria"]["default"]


def _md(suite: dict[str, Any]) -> str:
    """The Markdown with its HTML entities read back, as a renderer shows it."""
    return str(suite["md"]).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\\|", "|")


@pytest.mark.parametrize("render", ["md", "html"])
def test_each_variant_gets_advice_from_its_own_figures(suite: dict[str, Any], render: str) -> None:
    text = _md(suite) if render == "md" else suite["html"]
    assert "What the figures say" in text
    better, same, strict = (_cell(suite, v) for v in ("better", "same", "strict"))
    # which metric moved, by how much, how sure: the real effect is reported as the gain it is
    assert "better: better on default" in text
    gain = f"default rose by {better['mean_difference']:.3g}"
    assert gain in text
    assert "significant after Holm correction over 3" in text
    # the null variant: not significant, and the no-worse claim made with its own margin and p
    assert same["significant"] is False
    if same["equivalence"]["tost"]["equivalent"]:
        assert "same: equivalent on default within ±0.05 (TOST p" in text
    elif same["equivalence"]["no_worse"]["holds"]:
        assert "same: no worse on default by more than 0.05" in text
    else:
        assert "same: no clear difference on default" in text
    assert "better: better on default (but the intention-to-treat line disagrees and it was stopped early)" in text
    # the variant whose validator failed rows: equal on the rows it kept, the ITT line says what the failures cost
    failed = suite["truth"]["aggregates"]["experiments"]["strict"]["failed"]
    assert failed > 0
    assert strict["itt"]["imputed"]["variant"] == failed
    assert f"Counting the rows left out ({failed} of the variant's) as the worst score" in text
    verdicts = re.findall(r"\b(better|same|strict): ([^.]*)\.", text)
    assert len({v for _, v in verdicts[:3]}) == 3, verdicts


@pytest.mark.parametrize("render", ["md", "html"])
def test_every_point_of_the_issue_is_in_the_report(suite: dict[str, Any], render: str) -> None:
    text = _md(suite) if render == "md" else suite["html"]
    better = _cell(suite, "better")
    rows = better["rows"]
    # rows used and left out per arm, and why (the variant was stopped early: its other rows never ran)
    assert f"on {rows['used']} rows (left out: baseline {rows['baseline']['unpaired']} unpaired; " in text
    assert f"variant {rows['variant']['not_run']} not run)" in text
    assert f"intention-to-treat, a failed or unscored row as {better['itt']['worst_score']:.3g}" in text
    assert "Intervals: studentized bootstrap of the mean paired difference" in text or render == "html"
    assert "studentized bootstrap of the mean paired difference, 10000 resamples" in text
    # the sequential stop: which p-value holds, and that the fixed-n ones do not
    assert better["p_values_hold"] is False
    stop = suite["truth"]["aggregates"]["experiments"]["better"]["early_stop"]
    assert stop["plugin"] == "sequential"
    assert "holds; the fixed-n p-values and intervals of this comparison do not hold" in text
    assert re.search(r"its always-valid p = [0-9.e-]+ holds", text)
    # TOST and the non-inferiority claim, verdicts in words
    assert "TOST within ±0.05: equivalence not shown" in text
    assert "TOST within ±0.05: equivalent" in text  # strict: identical on the rows both scored
    assert "no worse than the baseline by more than 0.05: holds" in text
    # the judges: a position-biased pairwise judge is called biased, its cost is kept apart
    assert "position bias: the response shown first won 100.0% of decided pairs" in text
    assert "apart from the experiments' own" in text
    judge_cost = suite["truth"]["aggregates"]["comparisons"]["better"]["pairwise_judge"]["judge"]["cost"]
    assert f"{judge_cost:.3g} EUR" in text
    # the gates, each with its figures
    assert "All 3 gates passed" in text
    assert "pass_rate >= 0.6 (better)" in text
    assert re.search(r"cost <= 0\.5\W+passed\W+cost 0\.0\d+ <= 0\.5 over \d+ rows", text)


@pytest.mark.parametrize("render", ["md", "html"])
def test_latency_in_ms_and_money_in_the_price_tables_currency(suite: dict[str, Any], render: str) -> None:
    text = _md(suite) if render == "md" else suite["html"]
    latency = suite["truth"]["aggregates"]["experiments"]["baseline"]["aggregates"]["latency_summary"]
    assert latency["p95"] < 1, "the mock client answers in milliseconds"
    assert f"{latency['p95'] * 1000:.3g} ms" in text
    cost = suite["truth"]["aggregates"]["experiments"]["baseline"]["aggregates"]["cost_summary"]["cost"]["total"]
    assert 0.001 < cost < 0.01
    assert f"{cost:.5f} EUR" in text
    assert "USD" not in text


def test_chart_axes_start_at_sensible_values(suite: dict[str, Any]) -> None:
    axes = suite["axes"]
    scores = [t for t in axes["scores"] if t and t != "score"]
    assert (scores[0], scores[-1]) == ("0", "1"), "a 0-1 score is drawn on its whole scale"
    latency = [t for t in axes["latency"] if t]
    assert (latency[0], latency[-1]) == ("0", "ms"), "latency from 0, in ms"
    cost = [t for t in axes["cost"] if t]
    assert (cost[0], cost[-1]) == ("0", "cost EUR")


ADVICE = """
JSON.stringify(Array.from(document.querySelectorAll('div.advice')).map(d => {
  const box = d.getBoundingClientRect();
  return {variant: d.dataset.variant, text: d.innerText, height: box.height, width: box.width};
}))
"""


def test_a_person_sees_each_variants_advice_and_the_gates_in_chromium(suite: dict[str, Any], browser_page: Any) -> None:
    browser_page.open(suite["page"])
    shown = json.loads(browser_page.evaluate(ADVICE))
    assert [a["variant"] for a in shown] == ["better", "same", "strict"]
    for block in shown:
        assert block["height"] > 40, block
        assert block["width"] > 300, block
        assert block["text"].startswith(f"{block['variant']}: "), block["text"][:80]
    assert len({a["text"].splitlines()[0] for a in shown}) == 3, "one verdict per variant, not one for all"
    gates = browser_page.evaluate("document.querySelectorAll('table.gates tr.gate.passed').length")
    assert gates == 3
    assert browser_page.console_errors() == []
