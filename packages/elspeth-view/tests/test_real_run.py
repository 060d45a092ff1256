"""The API over a store two real experiment runs wrote: figures side by side, comparisons, prompts, attempts."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def get(url: str) -> Any:
    with urllib.request.urlopen(url) as res:
        return json.loads(res.read())


def test_experiments_side_by_side_and_comparisons(real_viewer: str, real_runs: Any) -> None:
    first = real_runs.first
    run = get(f"{real_viewer}/api/runs/{first}")
    assert run["experiments"]["names"] == ["baseline", "strict"]
    figures = {name: values for name, *values in run["experiments"]["figures"]}
    assert figures["rows"] == [real_runs.rows, real_runs.rows]
    assert figures["succeeded"] == [real_runs.rows, real_runs.rows - 1]
    assert figures["failed"] == [0, 1]
    assert all(0 <= m <= 1 for m in figures["score_stats.overall.mean"])
    [comparison] = run["comparisons"]
    assert (comparison["variant"], comparison["plugin"]) == ("strict", "score_significance")
    assert comparison["figures"]["criteria.default.n"] == real_runs.rows - 1  # paired on the rows both finished
    assert isinstance(comparison["figures"]["criteria.default.significant"], bool)


def test_a_row_has_its_prompts_replies_and_failed_attempts(real_viewer: str, real_runs: Any) -> None:
    first = real_runs.first
    row = get(f"{real_viewer}/api/runs/{first}/rows/{real_runs.failed_row}")
    baseline, strict = row["groups"]
    assert baseline["prompts"] == {"system": "You rate products.", "user": "Rate item 7 made of cotton"}
    assert strict["prompts"] == {"system": "You are a strict critic.", "user": "Strictly rate item 7"}
    assert baseline["ok"]
    assert baseline["outputs"]["response"].startswith("Score: ")
    assert baseline["metrics"]["scores"]["default"] == float(baseline["outputs"]["response"].split()[1])
    assert (strict["ok"], strict["stage"]) == (False, "llm")
    assert "HTTP 400" in strict["error"]
    assert [(a["attempt"], a["status"]) for a in strict["attempts"]] == [(1, 400)]


def test_the_second_run_differs_in_the_variant_only(real_viewer: str, real_runs: Any) -> None:
    first, second = real_runs.first, real_runs.second
    diff = get(f"{real_viewer}/api/diff?a={first}&b={second}&limit=500")
    assert {r["group"] for r in diff["rows"]} == {"strict"}
    fixed = next(r for r in diff["rows"] if r["row_id"] == real_runs.failed_row)
    assert (fixed["a"]["ok"], fixed["b"]["ok"]) == (False, True)
