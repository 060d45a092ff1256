"""``epochs`` and ``group_by`` as a user meets them: `elspeth run`, its summary lines, the results and both reports."""

from __future__ import annotations

import json
from pathlib import Path

from elspeth_testing import run_cli

SETTINGS = """
name: breakdown
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock}
prompts: {user: "Rate {{ text }}"}
orchestrator:
  plugin: experiment
  options:
    epochs: 3
    group_by: lang
    group_min_rows: 8
    row_plugins: [{plugin: score_extractor, options: {threshold: 0.6}}]
    aggregators: [score_stats]
    comparisons: [{plugin: score_significance, options: {cluster_by: doc}}]
    experiments:
      - {name: base, baseline: true}
      - {name: other, llm_options: {seed: 5}}
sinks:
  - {plugin: json, options: {path: summary.json}}
  - {plugin: analytics_report, options: {file_stem: reports/analytics}}
  - {plugin: visual_report, options: {path: reports/visual.html}}
"""


def _project(tmp_path: Path, settings: str = SETTINGS) -> Path:
    langs = ["en"] * 12 + ["fr"] * 10 + ["<b>de</b>"] * 3
    lines = "".join(f"r{i},text {i},{lang},d{i // 5}\n" for i, lang in enumerate(langs))
    (tmp_path / "data.csv").write_text("id,text,lang,doc\n" + lines)
    (tmp_path / "settings.yaml").write_text(settings)
    return tmp_path


def test_group_by_and_epochs_reach_the_results_the_summary_and_both_reports(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = run_cli("run", "settings.yaml", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "base (baseline): 25 ok, 0 failed" in done.stdout
    assert "3 epochs a row" in done.stdout
    assert "by lang (per category:" in done.stdout
    assert "lang=en (12 rows): base mean" in done.stdout
    assert "lang=<b>de</b> (3 rows)" in done.stdout
    assert "3 rows, fewer than group_min_rows = 8: not compared" in done.stdout

    out = project / "output"
    aggs = json.loads((out / "summary.json").read_text(encoding="utf-8"))["aggregates"]
    groups = aggs["groups"]
    assert groups["too_few"] == {"<b>de</b>": 3}
    assert {k: v["rows"] for k, v in groups["categories"].items()} == {"en": 12, "fr": 10, "<b>de</b>": 3}
    en = groups["categories"]["en"]
    assert en["experiments"]["base"]["aggregates"]["score_stats"]["overall"]["count"] == 12
    cell = en["comparisons"]["other"]["score_significance"]["criteria"]["default"]
    assert cell["n"] == 12
    assert cell["family_size"] == 1  # the family of this category: one variant x one criterion
    assert cell["clustered"]["cluster_by"] == "doc"
    assert cell["clustered"]["observations"] == 2 * 12 * 3
    assert groups["categories"]["<b>de</b>"]["comparisons"] is None
    overall = aggs["comparisons"]["other"]["score_significance"]["criteria"]["default"]
    assert overall["n"] == 25
    assert overall["clustered"]["clusters"] == 5  # d0 .. d4

    report = json.loads((out / "reports" / "analytics.json").read_text(encoding="utf-8"))
    assert report["groups"]["column"] == "lang"
    assert [c["category"] for c in report["groups"]["categories"]] == ["en", "fr", "<b>de</b>"]
    assert report["epochs"]["experiments"][0]["epochs"] == 3
    assert report["epochs"]["clustered"][0]["cluster_by"] == "doc"

    markdown = (out / "reports" / "analytics.md").read_text(encoding="utf-8")
    assert "## Repeated samples (epochs)" in markdown
    assert "Within-row var" in markdown
    assert "## By lang" in markdown
    assert "Multiple testing: per category" in markdown
    assert "Not compared, fewer than 8 rows: &lt;b&gt;de&lt;/b&gt; (3 rows)." in markdown
    assert "<b>de</b>" not in markdown  # a category is data: shown, never run as HTML

    html = (out / "reports" / "visual.html").read_text(encoding="utf-8")
    assert "<h2>Repeated samples (epochs)</h2>" in html
    assert "<h2>By lang</h2>" in html
    assert "&lt;b&gt;de&lt;/b&gt;" in html
    assert "<b>de</b>" not in html


def test_a_group_by_column_not_in_the_data_exits_2_naming_the_field(tmp_path: Path) -> None:
    project = _project(tmp_path, SETTINGS.replace("group_by: lang", "group_by: language"))
    done = run_cli("run", "settings.yaml", cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "orchestrator.options.group_by" in done.stderr
    assert "'language' is not a column of the data" in done.stderr
    assert not (project / "output" / "summary.json").exists()
