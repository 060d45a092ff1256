"""``elspeth estimate`` across distributions: an experiment's groups, and a client with no tokenizer of its own."""

from __future__ import annotations

import json
import math

from elspeth_testing.plugin import ElspethCli, WriteSettings

DATA = "id,text\nr0,good\nr1,a much longer review text\nr2,ok\n"
USERS = ["Review: good", "Review: a much longer review text", "Review: ok"]


def test_an_experiment_is_estimated_per_experiment(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    write_settings(
        """\
name: compared
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock}
cost_tracker: {plugin: price_table, options: {prices: {'*': {input: 1, output: 1}}}}
prompts: {system: "S", user: "Review: {{ text }}"}
orchestrator:
  plugin: experiment
  options:
    experiments:
      - {name: base, baseline: true}
      - {name: longer, prompts: {system: "A much longer system prompt"}}
sinks: [{plugin: jsonl}]
""",
        {"data.csv": DATA},
    )
    done = elspeth_cli("estimate", "settings.yaml", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    def tokens(text: str) -> int:
        return max(1, (len(text) + 3) // 4)

    assert out["groups"]["base"]["calls"] == out["groups"]["longer"]["calls"] == 3
    assert out["groups"]["base"]["input_tokens"] == sum(tokens("S") + tokens(u) for u in USERS)
    longer = sum(tokens("A much longer system prompt") + tokens(u) for u in USERS)
    assert out["groups"]["longer"]["input_tokens"] == longer
    assert out["total"]["calls"] == 6


def test_without_a_tokenizer_or_max_tokens_the_figures_say_they_are_estimates(
    write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    write_settings(
        """\
name: priced
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: openai, options: {model: gpt-x, base_url: 'http://127.0.0.1:9/v1'}}
cost_tracker:
  plugin: price_table
  options: {currency: EUR, prices: {gpt-x: {input: 1, output: 4, batch_input: 0.5, batch_output: 2}}}
prompts: {system: "Rate it.", user: "Review: {{ text }}"}
orchestrator: {plugin: batch}
sinks: [{plugin: jsonl}]
""",
        {"data.csv": DATA},
    )
    done = elspeth_cli("estimate", "settings.yaml", "--output-tokens", "100", env={"OPENAI_API_KEY": "k"})
    assert done.returncode == 0, done.stderr
    chars = 3 * math.ceil(len("Rate it.") / 4) + sum(math.ceil(len(u) / 4) for u in USERS)
    assert f"~{chars}" in done.stdout
    assert "input tokens estimated at 4 characters a token" in done.stdout
    assert "output tokens assume 100 a call" in done.stdout
    live, batch = (chars * 1 + 300 * 4) / 1e6, (chars * 0.5 + 300 * 2) / 1e6
    assert f"{live:,.4f} EUR" in done.stdout
    assert f"{batch:,.4f} EUR" in done.stdout
    assert "batch prices assumed" not in done.stdout


def test_epochs_are_estimated_as_k_calls_a_row(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    write_settings(
        """\
name: repeated
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock}
cost_tracker: {plugin: price_table, options: {prices: {'*': {input: 1, output: 1}}}}
prompts: {system: "S", user: "Review: {{ text }}"}
orchestrator:
  plugin: experiment
  options:
    epochs: 4
    experiments:
      - {name: base, baseline: true}
      - {name: once, epochs: 1}
sinks: [{plugin: jsonl}]
""",
        {"data.csv": DATA},
    )
    done = elspeth_cli("estimate", "settings.yaml", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["groups"]["base"]["calls"] == 4 * 3
    assert out["groups"]["once"]["calls"] == 3
    assert out["groups"]["base"]["input_tokens"] == 4 * out["groups"]["once"]["input_tokens"]
