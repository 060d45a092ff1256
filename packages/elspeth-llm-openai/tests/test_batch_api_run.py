"""`elspeth run` with `batch_api` on: the experiment's calls go out as one OpenAI batch, never live."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import ElspethCli, WriteSettings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_experiment") is None, reason="needs elspeth-orchestrator-experiment installed"
)

SETTINGS = """\
name: batch-e2e
datasource: {plugin: csv, options: {path: reviews.csv, id_column: id}}
llm:
  plugin: openai
  options: OPTIONS
batch_api: BATCH
cost_tracker:
  plugin: price_table
  options: {prices: {"*": {input: 2, output: 8, batch_input: 1, batch_output: 4}}}
retry: {max_attempts: 2, initial_delay_s: 0.01, timeout_s: 0.5}
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


def reviews(n: int, extra: dict[int, str] | None = None) -> str:
    extra = extra or {}
    return "id,review\n" + "".join(f"r{i},review number {i}{extra.get(i, '')}\n" for i in range(n))


def test_a_run_sends_one_batch_and_writes_every_row(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    path = write_settings(settings(options), {"reviews.csv": reviews(12)})
    done = elspeth_cli("run", str(path), env={"OPENAI_TEST_KEY": "sk-test-not-a-secret"})
    assert done.returncode == 0, done.stderr

    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1
    assert keyed_server.requests("/chat/completions") == []
    assert "batch batch_000001: completed (submitted 12" in done.stderr
    rows = [json.loads(line) for line in (Path(path).parent / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:  # priced at the batch rates (1 and 4 a million), not the live ones (2 and 8)
        m = row["metrics"]
        assert m["cost"] == pytest.approx((m["prompt_tokens"] * 1 + m["completion_tokens"] * 4) / 1e6)


def test_expired_and_failed_rows_are_retried_live_when_asked(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.script(["500"], match="review number 3")
    path = write_settings(settings(options, retry_live=True), {"reviews.csv": reviews(6, {1: " EXPIRE-IN-BATCH"})})
    done = elspeth_cli("run", str(path), env={"OPENAI_TEST_KEY": "sk-test-not-a-secret"})
    assert done.returncode == 0, done.stderr
    live = sorted(r.prompt for r in keyed_server.requests("/chat/completions"))
    assert live == ["Review: review number 1 EXPIRE-IN-BATCH", "Review: review number 3"]
    out = Path(path).parent / "out"
    assert len((out / "results.jsonl").read_text().splitlines()) == 6


def test_without_retry_live_they_are_failures_naming_the_batch(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.script(["500"], match="review number 3")
    path = write_settings(settings(options), {"reviews.csv": reviews(6, {1: " EXPIRE-IN-BATCH"})})
    done = elspeth_cli("run", str(path), env={"OPENAI_TEST_KEY": "sk-test-not-a-secret"})
    assert keyed_server.requests("/chat/completions") == []
    failures = (Path(path).parent / "out" / "failures.csv").read_text()
    assert "batch batch_000001" in failures
    assert "expired" in failures
    assert "retry_live" in failures
    assert done.returncode in {0, 1}, done.stderr


def test_a_client_without_a_batch_api_is_exit_2(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    text = settings({}).replace("plugin: openai\n  options: {}", "plugin: mock\n  options: {}")
    path = write_settings(text, {"reviews.csv": reviews(2)})
    done = elspeth_cli("run", str(path))
    assert done.returncode == 2
    assert "batch_api is on, but llm_client 'mock' has no batch API" in done.stderr


def test_a_run_killed_while_polling_resumes_by_polling_never_submitting_again(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    keyed_server.configure_batches(polls_per_step=100_000)  # the batch stays `validating` until the kill
    path = write_settings(settings(options), {"reviews.csv": reviews(9)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    env["OPENAI_TEST_KEY"] = "sk-test-not-a-secret"
    with open(path.parent / "first.err", "w") as err:
        first = subprocess.Popen(
            [sys.executable, "-m", "elspeth", "run", str(path)], cwd=path.parent, env=env, stderr=err
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and first.poll() is None:
                polls = [r for r in keyed_server.requests("/v1/batches/") if r.method == "GET"]
                if len(polls) >= 3:
                    break
                time.sleep(0.05)
            assert first.poll() is None, (path.parent / "first.err").read_text()
            assert len(polls) >= 3, "the run never polled its batch"
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
    store = sqlite3.connect(path.parent / "out" / "elspeth-runs.sqlite")
    (run_id,) = store.execute("SELECT run_id FROM runs").fetchone()
    [(tag, batch_id, collected)] = store.execute("SELECT tag, batch_id, collected FROM batches").fetchall()
    store.close()
    assert (tag, batch_id, collected) == (f"{run_id}/0", "batch_000001", 0)

    keyed_server.configure_batches(polls_per_step=1)
    done = elspeth_cli("run", str(path), "--resume", run_id, env={"OPENAI_TEST_KEY": "sk-test-not-a-secret"})
    assert done.returncode == 0, done.stderr
    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1  # never submitted again
    assert [r.method for r in keyed_server.requests("/v1/files")].count("POST") == 1
    assert keyed_server.requests("/chat/completions") == []
    rows = (path.parent / "out" / "results.jsonl").read_text().splitlines()
    assert len(rows) == 9


@pytest.mark.skipif(importlib.util.find_spec("elspeth_batch") is None, reason="needs elspeth-orchestrator-batch")
def test_the_batch_orchestrator_sends_one_batch_too(
    options: dict[str, Any], keyed_server: LLMTestServer, write_settings: WriteSettings, elspeth_cli: ElspethCli
) -> None:
    text = settings(options).replace(
        "  plugin: experiment\n  options:\n    row_plugins: [score_extractor]", "  plugin: batch\n  options: {}"
    )
    path = write_settings(text, {"reviews.csv": reviews(7)})
    done = elspeth_cli("run", str(path), env={"OPENAI_TEST_KEY": "sk-test-not-a-secret"})
    assert done.returncode == 0, done.stderr
    assert [r.method for r in keyed_server.requests("/v1/batches")].count("POST") == 1
    assert keyed_server.requests("/chat/completions") == []
    assert len((Path(path).parent / "out" / "results.jsonl").read_text().splitlines()) == 7
