"""A budget cap stops a run cleanly, keeping the rows that finished."""

from __future__ import annotations

import json

from elspeth.config import load_settings
from elspeth.discovery import load_registry
from elspeth.engine import run_settings

SETTINGS = """
name: budget
datasource: {plugin: csv, options: {path: data.csv}}
llm: {plugin: mock, options: {model: m}}
cost_tracker: {plugin: price_table, options: {prices: {m: {input: 1000, output: 1000}}, budget: 0.2}}
prompts: {user: "Rate {{ text }}"}
concurrency: 2
orchestrator: {plugin: experiment, options: {experiments: [{name: a, baseline: true}, {name: b}]}}
sinks: [{plugin: jsonl}, {plugin: json}]
"""


def test_a_budget_stops_the_run_cleanly_keeping_finished_rows(tmp_path):
    (tmp_path / "data.csv").write_text("text\n" + "".join(f"review number {i}\n" for i in range(40)))
    (tmp_path / "settings.yaml").write_text(SETTINGS)
    result = run_settings(load_settings(tmp_path / "settings.yaml"), load_registry(environ={}))
    meta = result.metadata
    assert meta.status == "stopped"
    assert meta.to_dict()["stop_reason"].startswith("budget of 0.2 USD reached")
    assert meta.outcome.reason == meta.outcome.stop_reason == meta.to_dict()["stop_reason"]
    assert meta.to_dict()["cost"]["budget_reached"] is True
    done = len(result.records)
    assert 0 < done < 40
    experiments = result.aggregates["experiments"]
    assert experiments["a"]["succeeded"] + experiments["a"]["not_run"] == 40
    assert experiments["b"]["not_run"] == 40
    lines = (tmp_path / "output" / "results.jsonl").read_text().splitlines()
    assert len(lines) == done
    assert all(json.loads(line)["metrics"]["cost"] > 0 for line in lines)
