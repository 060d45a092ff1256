"""``elspeth estimate`` on batch settings, against figures counted by hand; ``run`` refuses a run over budget."""

from __future__ import annotations

import json
from pathlib import Path

from elspeth_testing.plugin import ElspethCli, WriteSettings

DATA = "id,text\nr0,good\nr1,a much longer review text\nr2,ok\n"


def settings(llm: str, *, budget: str = "", params: str = "{max_tokens: 10}", prices: str = "") -> str:
    prices = prices or "{mock-1: {input: 1000, output: 2000, batch_input: 400}}"
    return f"""\
name: priced
datasource: {{plugin: csv, options: {{path: data.csv, id_column: id}}}}
llm: {llm}
cost_tracker: {{plugin: price_table, options: {{currency: EUR, prices: {prices}{budget}}}}}
prompts: {{system: "Rate it.", user: "Review: {{{{ text }}}}"}}
orchestrator: {{plugin: batch, options: {{params: {params}}}}}
sinks: [{{plugin: jsonl}}]
"""


def mock_tokens(text: str) -> int:  # the mock client's own count, the one it bills
    return max(1, (len(text) + 3) // 4)


def hand_counted_input() -> int:
    users = ["Review: good", "Review: a much longer review text", "Review: ok"]
    return sum(mock_tokens("Rate it.") + mock_tokens(u) for u in users)


def test_the_estimate_counts_every_call_with_the_clients_tokenizer(
    write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    write_settings(settings("{plugin: mock}"), {"data.csv": DATA})
    done = elspeth_cli("estimate", "settings.yaml", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    total = out["total"]
    tokens_in = hand_counted_input()
    assert (out["rows"], total["calls"], total["input_tokens"]) == (3, 3, tokens_in)
    assert total["input_tokens_counted"] == "exact"
    assert (total["output_tokens"], total["output_tokens_from"]) == (30, "max_tokens")
    assert total["live_cost"] == round((tokens_in * 1000 + 30 * 2000) / 1e6, 6)
    assert total["batch_cost"] == round((tokens_in * 400 + 30 * 1000) / 1e6, 6), "batch_output: half of 2000"
    assert total["batch_price"] == "assumed half of live"
    assert out["currency"] == "EUR"
    assert total["models"] == ["mock-1"]


def test_what_the_estimate_says_is_what_the_run_then_spends(
    write_settings: WriteSettings, elspeth_cli: ElspethCli, tmp_path: Path
) -> None:
    write_settings(settings("{plugin: mock}"), {"data.csv": DATA})
    estimated = json.loads(elspeth_cli("estimate", "settings.yaml", "--json").stdout)["total"]
    done = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (tmp_path / "output" / "results.jsonl").read_text().splitlines()]
    assert sum(x["metrics"]["prompt_tokens"] for x in lines) == estimated["input_tokens"]


def test_a_model_without_a_price_is_unpriced_not_free(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    write_settings(settings("{plugin: mock, options: {model: other}}"), {"data.csv": DATA})
    out = json.loads(elspeth_cli("estimate", "settings.yaml", "--json").stdout)
    assert out["total"]["live_cost"] is None
    done = elspeth_cli("estimate", "settings.yaml")
    assert "unpriced" in done.stdout
    assert "add their model to a price_table" in done.stdout


def test_run_refuses_a_run_estimated_over_its_budget_unless_forced(
    write_settings: WriteSettings, elspeth_cli: ElspethCli, tmp_path: Path
) -> None:
    write_settings(settings("{plugin: mock}", budget=", budget: 0.05"), {"data.csv": DATA})
    refused = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert refused.returncode == 2
    assert "exceeds its budget of 0.0500 EUR" in refused.stderr
    assert "--force" in refused.stderr
    assert not (tmp_path / "output").exists(), "a refused run leaves nothing behind"
    forced = elspeth_cli("run", "settings.yaml", "--no-progress", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "output" / "results.jsonl").exists()


def test_run_goes_ahead_when_the_estimate_is_within_budget(
    write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    write_settings(settings("{plugin: mock}", budget=", budget: 100"), {"data.csv": DATA})
    done = elspeth_cli("run", "settings.yaml", "--no-progress")
    assert done.returncode == 0, done.stderr


def test_validate_prints_the_estimate_line(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    write_settings(settings("{plugin: mock}"), {"data.csv": DATA})
    done = elspeth_cli("validate", "settings.yaml")
    assert done.returncode == 0, done.stderr
    assert f"estimate: 3 LLM calls, {hand_counted_input()} input tokens" in done.stdout


def test_bad_settings_are_exit_2_naming_the_field(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    write_settings(settings("{plugin: mock}").replace("{{ text }}", "{{ missing }}"), {"data.csv": DATA})
    done = elspeth_cli("estimate", "settings.yaml")
    assert done.returncode == 2
    assert "prompts.user" in done.stderr
    assert "missing" in done.stderr
