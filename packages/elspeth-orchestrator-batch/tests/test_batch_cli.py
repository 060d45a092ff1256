"""The batch orchestrator as a user meets it: installed, listed, and run with ``elspeth run``."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

import elspeth_batch
from elspeth_testing.plugin import ElspethCli, WriteSettings

needs_processors = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_processors") is None, reason="elspeth-processors is not installed"
)
needs_retrieval = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_retrieval") is None, reason="elspeth-retrieval is not installed"
)


SETTINGS = """\
name: reviews
datasource:
  plugin: csv
  options: {path: data.csv, id_column: id}
llm:
  plugin: mock
  options: {json_reply: true, failure_rate: 0.2}
retry: {max_attempts: 1}
prompts:
  system: Rate the review.
  user: "{{ product }}: {{ review }}"
concurrency: 16
orchestrator:
  plugin: batch
  options:
    json_fields: {score: score, why: rationale}
sinks:
  - plugin: csv
    options: {path: results.csv, failures_path: failures.csv}
  - plugin: json
    options: {path: summary.json}
"""


def test_the_plugin_is_installed_and_listed(elspeth_cli: ElspethCli) -> None:
    done = elspeth_cli("plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = [e for e in json.loads(done.stdout) if e["domain"] == "orchestrator" and e["name"] == "batch"]
    assert entry["status"] == "ok", entry["error"]
    assert entry["distribution"] == "elspeth-orchestrator-batch"
    assert entry["version"] == elspeth_batch.__version__
    shown = elspeth_cli("plugins", "show", "batch")
    assert "json_fields" in shown.stdout
    assert "on_parse_error" in shown.stdout


def test_elspeth_run_writes_every_row_once_in_order(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, reviews_csv: Any, tmp_path: Path
) -> None:
    write_settings(SETTINGS, {"data.csv": reviews_csv(300)})
    done = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert done.returncode == 0, done.stderr
    with (tmp_path / "output/results.csv").open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    with (tmp_path / "output/failures.csv").open(encoding="utf-8", newline="") as handle:
        failures = list(csv.DictReader(handle))
    assert records
    assert failures, "the mock's failure_rate fails about a fifth of the rows"
    ids = [r["row_id"] for r in records]
    assert ids == sorted(ids)
    assert sorted(ids + [f["row_id"] for f in failures]) == [f"r{i:04d}" for i in range(300)]
    assert all(0.4 <= float(r["score"]) <= 0.9 for r in records)
    assert records[0]["why"].startswith("mock judgement of: ")
    assert {f["failure.stage"] for f in failures} == {"llm"}
    assert f"batch: {len(records)} ok, {len(failures)} failed (llm {len(failures)})" in done.stdout
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    assert summary["metadata"]["succeeded"] == len(records)
    assert summary["metadata"]["tokens"]["total"] > 0
    assert len(summary["failures"]) == len(failures)
    leftovers = [p.name for p in (tmp_path / "output").iterdir() if p.name.startswith(".")]
    assert leftovers == [], "the spools are removed when the run ends"


def test_bad_settings_stop_validate_and_run_before_any_row(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, reviews_csv: Any, tmp_path: Path
) -> None:
    text = SETTINGS.replace('prompts:\n  system: Rate the review.\n  user: "{{ product }}: {{ review }}"\n', "")
    text = text.replace("rationale}", "rationale, bad: 'a..b'}")
    write_settings(text, {"data.csv": reviews_csv(3)})
    orchestrator_line = text.splitlines().index("orchestrator:") + 1
    fields_line = next(i for i, line in enumerate(text.splitlines(), 1) if "json_fields" in line)
    for command in ("validate", "run"):
        done = elspeth_cli(command, "settings.yaml")
        assert done.returncode == 2, done.stdout
        assert f"add `prompts` with at least `user` to the settings (settings.yaml:{orchestrator_line})" in done.stderr
        assert "orchestrator.options.json_fields.bad: 'a..b' is not a key or dotted path" in done.stderr
        assert f"(settings.yaml:{fields_line})" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "output").exists()


def test_resume_takes_finished_rows_over_without_calling_the_llm_again(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, reviews_csv: Any, tmp_path: Path
) -> None:
    write_settings(SETTINGS, {"data.csv": reviews_csv(40)})
    first = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split()[1]
    before = (tmp_path / "output/results.csv").read_bytes()
    calls = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))["metadata"]["llm_calls"]
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", run_id)
    assert again.returncode == 0, again.stderr
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    # a resumed run's llm_calls count every attempt's calls: none were added by this one
    assert summary["metadata"]["llm_calls"] == calls
    assert summary["metadata"]["resumed_rows"] == 40
    assert (tmp_path / "output/results.csv").read_bytes() == before


@needs_processors
@needs_retrieval
def test_a_misspelt_processor_column_or_retrieval_field_stops_validate_before_any_row(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, reviews_csv: Any, tmp_path: Path
) -> None:
    text = SETTINGS.replace(
        "concurrency: 16\n",
        "concurrency: 16\n"
        "processors:\n"
        "  - plugin: text_cleaning\n"
        "    options: {columns: [reveiw]}\n"
        "  - plugin: pii_redaction\n"
        "    options: {columns: [review, prodcut]}\n"
        "utilities:\n"
        "  - plugin: retrieval\n"
        '    options: {corpus_path: kb, query_template: "{{ questoin }} {{ review }}"}\n',
    )
    write_settings(text, {"data.csv": reviews_csv(3), "kb/a.md": "Kettles boil water."})
    lines = text.splitlines()
    where = {
        needle: next(i for i, line in enumerate(lines, 1) if needle in line)
        for needle in ("[reveiw]", "prodcut", "questoin")
    }
    done = elspeth_cli("validate", "settings.yaml")
    assert done.returncode == 2, done.stdout
    assert (
        "processors[0].options.columns: processor 'text_cleaning' reads 'reveiw', which the rows do not have when it "
        f"runs (their fields: id, product, review); did you mean 'review'? (settings.yaml:{where['[reveiw]']})"
    ) in done.stderr
    assert "processors[1].options.columns: processor 'pii_redaction' reads 'prodcut'" in done.stderr
    assert f"did you mean 'product'? (settings.yaml:{where['prodcut']})" in done.stderr
    assert "utilities[0].options.query_template: utility 'retrieval' reads 'questoin'" in done.stderr
    assert f"(settings.yaml:{where['questoin']})" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "output").exists()


def test_a_resume_after_the_budget_counts_every_attempt_alike_in_metadata_and_aggregates(
    elspeth_cli: ElspethCli, write_settings: WriteSettings, reviews_csv: Any, tmp_path: Path
) -> None:
    priced = SETTINGS.replace("failure_rate: 0.2", "failure_rate: 0.0").replace(
        "concurrency: 16\n",
        "concurrency: 2\n"
        "cost_tracker:\n"
        "  plugin: price_table\n"
        '  options: {prices: {"*": {input: 1.0, output: 2.0}}, budget: 0.0005}\n',
    )
    write_settings(priced, {"data.csv": reviews_csv(30)})
    # --force: the estimate is over the budget, and the budget stopping the run mid-way is what is tested
    first = elspeth_cli("run", "settings.yaml", "--no-progress", "--force")
    assert first.returncode == 0, first.stderr
    assert " stopped " in first.stdout.splitlines()[0]
    run_id = first.stdout.split()[1]
    (tmp_path / "settings.yaml").write_text(priced.replace("budget: 0.0005", "budget: 1.0"), encoding="utf-8")
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", run_id)
    assert again.returncode == 0, again.stderr
    summary = json.loads((tmp_path / "output/summary.json").read_text(encoding="utf-8"))
    meta, aggregates = summary["metadata"], summary["aggregates"]
    assert meta["llm_calls"] == 30  # every row was sent once, over the two attempts
    assert aggregates["tokens"] == meta["tokens"]
    assert aggregates["cost_total"] == meta["cost_total"] == meta["cost"]["total_cost"]
    assert meta["tokens"]["total"] == meta["totals"]["prompt_tokens"] + meta["totals"]["completion_tokens"]
    assert meta["cost_total"] == meta["totals"]["cost"]
