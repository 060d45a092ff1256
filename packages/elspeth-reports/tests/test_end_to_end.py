"""The report sinks as a user meets them: installed, listed, and configured in a real experiment run."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import elspeth_reports
from elspeth import load_registry
from elspeth_testing import run_cli

BOTH_SINKS = (
    "  - plugin: analytics_report\n"
    "    options: {file_stem: reports/analytics}\n"
    "  - plugin: visual_report\n"
    "    options: {path: reports/visual.html}\n"
)


def test_installed_plugins_are_discovered_with_their_distribution() -> None:
    registry = load_registry(environ={})
    for name in ("analytics_report", "visual_report"):
        info = registry.get("sink", name)
        assert info.status == "ok", info.error
        assert info.distribution == "elspeth-reports"
        assert info.version == elspeth_reports.__version__


def test_listing_plugins_imports_no_renderer_and_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from elspeth import load_registry\n"
        "registry = load_registry(environ={})\n"
        "assert registry.get('sink', 'visual_report').status == 'ok'\n"
        "heavy = ['numpy', 'scipy', 'pandas']\n"
        "heavy += ['elspeth_reports.page', 'elspeth_reports.svg', 'elspeth_reports.markdown']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_real_experiment_reports_its_baseline_comparisons(example_project: Any) -> None:
    project: Path = example_project(BOTH_SINKS)
    # the json sink writes the same result the report sinks receive; its comparisons are the reference
    done = run_cli("run", "settings.yaml", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("reports/analytics.json", "reports/analytics.md", "reports/visual.html"):
        assert name in done.stdout, f"the CLI lists {name} among the files written"

    out = project / "output"
    truth = json.loads((out / "summary.json").read_text(encoding="utf-8"))["aggregates"]["comparisons"]
    report = json.loads((out / "reports" / "analytics.json").read_text(encoding="utf-8"))
    assert sorted(truth) == ["other-seed", "strict-analyst"]
    assert [c["variant"] for c in report["comparisons"]] == ["strict-analyst", "other-seed"]
    for comp in report["comparisons"]:
        (row,) = comp["criteria"]
        expected = truth[comp["variant"]]["score_significance"]["criteria"]["default"]
        bayes = truth[comp["variant"]]["score_bayes"]["criteria"]["default"]["mean_difference"]
        assert row["frequentist"]["mean_difference"] == expected["mean_difference"]
        assert row["frequentist"]["ci"] == expected["ci"]
        assert row["frequentist"]["p_value"] == expected["p_value"]
        assert row["frequentist"]["p_adjusted"] == expected["p_adjusted"]
        assert row["frequentist"]["cohens_d"] == expected["cohens_d"]
        assert row["frequentist"]["power_warning"] == expected["power"]["warning"]
        assert row["bayes"]["prob_variant_better"] == bayes["prob_variant_better"]
        assert row["bayes"]["credible_interval"] == bayes["credible_interval"]
    assert report["recommendations"]["baseline"]["recommendation"]
    assert report["cost"]["run"]["total"] > 0
    assert set(report["cost"]["experiments"]) == {"baseline", "strict-analyst", "other-seed"}
    assert report["rows"]["records"] + report["rows"]["failures"] == 60
    assert len(report["failures"]["examples"]) == min(5, report["failures"]["count"])

    md = (out / "reports" / "analytics.md").read_text(encoding="utf-8")
    assert "### strict-analyst vs baseline" in md
    assert "after Holm" in md
    html = (out / "reports" / "visual.html").read_text(encoding="utf-8")
    for comp in report["comparisons"]:  # every row accounted for, in both renderings (issue 16)
        (row,) = comp["criteria"]
        rows = truth[comp["variant"]]["score_significance"]["criteria"]["default"]["rows"]
        assert row["frequentist"]["rows"] == rows
        assert f"on {rows['used']} rows" in md
        assert f"on {rows['used']} rows" in html
        for arm in ("baseline", "variant"):
            if rows[arm]["failed"]:
                assert f"{arm} {rows[arm]['failed']} failed" in md
        if not row["frequentist"]["itt"]["same_as_primary"]:
            assert "intention-to-treat, a failed or unscored row as" in md

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.forest: list[tuple[str | None, str | None]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if "forest-row" in (found.get("class") or ""):
                self.forest.append((found.get("data-variant"), found.get("data-criterion")))

    parser = Rows()
    parser.feed((out / "reports" / "visual.html").read_text(encoding="utf-8"))
    assert parser.forest == [("strict-analyst", "default"), ("other-seed", "default")]


def test_a_bad_option_fails_validation_naming_the_setting(example_project: Any) -> None:
    project: Path = example_project("  - plugin: visual_report\n    options: {path: report.pdf}\n")
    done = run_cli("validate", "settings.yaml", cwd=project)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "sinks[0].options.path" in message
    assert ".html" in message
