"""`elspeth run` in a subprocess: an experiment whose `llm` is `anthropic`, pointed at the test server."""

from __future__ import annotations

import importlib.util
import json

import pytest

from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import ElspethCli, WriteSettings

# the experiment orchestrator is in the workspace's `tests` session, absent when this distribution is
# tested alone beside core (nox isolated), where the client's own tests still run
needs_experiment = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_experiment") is None, reason="needs elspeth-orchestrator-experiment installed"
)

SETTINGS = """\
name: anthropic-e2e
datasource: {plugin: csv, options: {path: reviews.csv, id_column: id}}
llm:
  plugin: anthropic
  options:
    model: claude-test
    base_url: BASE_URL
    api_key_env: ANTHROPIC_TEST_KEY
    max_tokens: 200
    temperature: 0
allowed_endpoints: [ROOT]
retry: {max_attempts: 5, initial_delay_s: 0.01, max_delay_s: 0.2, timeout_s: 10}
prompts:
  system: 'Reply with "Score: N".'
  user: 'Review: {{ review }}'
concurrency: 8
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
    aggregators: [score_stats]
sinks:
  - {plugin: jsonl, options: {path: results.jsonl}}
output_dir: out
"""


@needs_experiment
def test_elspeth_run_with_the_anthropic_client(
    keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.configure(rate_429=0.2, retry_after_s=0.05, rate_500=0.1, seed=5)
    keyed_server.script(["429", "529", "drop"], match="review 7")
    reviews = "id,review\n" + "".join(f"r{i},review {i} of the kettle\n" for i in range(30))
    text = SETTINGS.replace("BASE_URL", keyed_server.url).replace("ROOT", keyed_server.url)
    settings = write_settings(text, {"reviews.csv": reviews})

    done = elspeth_cli("run", str(settings))

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (settings.parent / "out" / "results.jsonl").read_text("utf-8").splitlines()]
    assert sorted(x["row_id"] for x in lines) == sorted(f"r{i}" for i in range(30))
    assert {x["status"] for x in lines} == {"ok"}
    for line in lines:
        score = line["metrics"]["scores"]["default"]
        assert line["outputs"]["response"].startswith(f"Score: {score:.2f}")
    assert all(x["metrics"]["prompt_tokens"] > 0 for x in lines), lines[0]
    assert keyed_server.successes_per_prompt() == {f"Review: review {i} of the kettle": 1 for i in range(30)}
    outcomes = [r.outcome for r in keyed_server.requests() if r.prompt == "Review: review 7 of the kettle"]
    assert outcomes == ["429", "529", "drop", "ok"]
    assert {r.path for r in keyed_server.requests()} == {"/v1/messages"}


def test_an_options_error_is_exit_2_naming_the_field(
    keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    text = SETTINGS.replace("BASE_URL", keyed_server.url).replace("ROOT", keyed_server.url)
    text = text.replace("max_tokens: 200", "max_tokens: -5")
    settings = write_settings(text, {"reviews.csv": "id,review\nr1,fine\n"})

    done = elspeth_cli("run", str(settings))

    assert done.returncode == 2, done.stderr
    assert "max_tokens" in done.stderr
    assert "greater than 0" in done.stderr, done.stderr
    assert keyed_server.requests() == []


@needs_experiment
def test_an_endpoint_outside_allowed_endpoints_is_refused_before_any_call(
    keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    text = SETTINGS.replace("BASE_URL", keyed_server.url).replace("ROOT", "https://api.anthropic.com")
    settings = write_settings(text, {"reviews.csv": "id,review\nr1,fine\n"})

    done = elspeth_cli("run", str(settings))

    assert done.returncode != 0
    assert f"LLM endpoint {keyed_server.url} is not in allowed_endpoints" in done.stderr
    assert keyed_server.requests() == []
