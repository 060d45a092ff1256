"""`elspeth run` with `batch_api` on through the anthropic client: one Message Batch, never a live call."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest

from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import ElspethCli, WriteSettings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_experiment") is None, reason="needs elspeth-orchestrator-experiment installed"
)

ENV = {"ANTHROPIC_TEST_KEY": "sk-ant-test-not-a-secret"}
SETTINGS = """\
name: batch-e2e
datasource: {plugin: csv, options: {path: reviews.csv, id_column: id}}
llm:
  plugin: anthropic
  options: OPTIONS
batch_api: BATCH
cost_tracker:
  plugin: price_table
  options: {prices: {"*": {input: 2, output: 8, batch_input: 1, batch_output: 4}}}
retry: {max_attempts: 2, initial_delay_s: 0.01, timeout_s: 2}
prompts:
  system: 'Reply with "Score: N".'
  user: 'Review: {{ review }}'
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
sinks:
  - {plugin: jsonl, options: {path: results.jsonl}}
  - {plugin: csv, options: {path: results.csv, failures_path: failures.csv}}
output_dir: out
"""


def settings(options: dict[str, Any], **batch: Any) -> str:
    opts = {"enabled": True, "poll_interval_s": 0.05, "gather_s": 0.3, **batch}
    return SETTINGS.replace("OPTIONS", json.dumps(options)).replace("BATCH", json.dumps(opts))


def reviews(n: int) -> str:
    return "id,review\n" + "".join(f"r{i},review number {i}\n" for i in range(n))


def created(server: LLMTestServer) -> int:
    return [r.method for r in server.requests("/v1/messages/batches")].count("POST")


def test_a_run_sends_one_batch_priced_at_batch_rates(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    path = write_settings(settings(options), {"reviews.csv": reviews(12)})
    done = elspeth_cli("run", str(path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert created(keyed_server) == 1
    assert [r for r in keyed_server.requests("/v1/messages") if r.path == "/v1/messages"] == []  # nothing live
    assert "ended (submitted 12" in done.stderr
    rows = [json.loads(line) for line in (path.parent / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:
        m = row["metrics"]
        assert m["cost"] == pytest.approx((m["prompt_tokens"] * 1 + m["completion_tokens"] * 4) / 1e6)
    assert max(keyed_server.successes_per_prompt().values()) == 1


def test_expired_and_errored_items_are_retried_live_when_asked(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.script(["hang"], match="review number 1")  # expires inside the batch
    keyed_server.script(["500"], match="review number 3")  # errors inside the batch
    path = write_settings(settings(options, retry_live=True), {"reviews.csv": reviews(6)})
    done = elspeth_cli("run", str(path), env=ENV)
    assert done.returncode == 0, done.stderr
    live = sorted(r.prompt for r in keyed_server.requests("/v1/messages") if r.path == "/v1/messages")
    assert live == ["Review: review number 1", "Review: review number 3"]
    assert len((path.parent / "out" / "results.jsonl").read_text().splitlines()) == 6
    assert max(keyed_server.successes_per_prompt().values()) == 1  # no prompt answered twice


def test_without_retry_live_they_are_failures(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.script(["hang"], match="review number 1")
    keyed_server.script(["400"], match="review number 3")
    path = write_settings(settings(options), {"reviews.csv": reviews(6)})
    done = elspeth_cli("run", str(path), env=ENV)
    assert done.returncode in {0, 1}, done.stderr
    failures = (path.parent / "out" / "failures.csv").read_text()
    assert "expired" in failures
    assert "invalid_request_error" in failures
    rows = [json.loads(line) for line in (path.parent / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["row_id"] for r in rows if r["status"] == "ok") == ["r0", "r2", "r4", "r5"]


def test_a_run_killed_while_polling_resumes_by_polling(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.configure_batch_jobs(polls=100_000)  # in progress until the kill
    path = write_settings(settings(options), {"reviews.csv": reviews(9)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")} | ENV
    with open(path.parent / "first.err", "w") as err:
        first = subprocess.Popen(
            [sys.executable, "-m", "elspeth", "run", str(path)], cwd=path.parent, env=env, stderr=err
        )
        try:
            deadline = time.monotonic() + 90
            polls: list[Any] = []
            while time.monotonic() < deadline and first.poll() is None and len(polls) < 3:
                polls = [r for r in keyed_server.requests("/v1/messages/batches/") if r.method == "GET"]
                time.sleep(0.05)
            assert first.poll() is None, (path.parent / "first.err").read_text()
            assert len(polls) >= 3, "the run never polled its batch"
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
    store = sqlite3.connect(path.parent / "out" / "elspeth-runs.sqlite")
    (run_id,) = store.execute("SELECT run_id FROM runs").fetchone()
    [(batch_id, collected)] = store.execute("SELECT batch_id, collected FROM batches").fetchall()
    store.close()
    assert (batch_id, collected) == (keyed_server.batch_jobs()[0]["id"], 0)

    keyed_server.configure_batch_jobs(polls=0)
    done = elspeth_cli("run", str(path), "--resume", run_id, env=ENV)
    assert done.returncode == 0, done.stderr
    assert created(keyed_server) == 1  # never submitted again
    assert len((path.parent / "out" / "results.jsonl").read_text().splitlines()) == 9
