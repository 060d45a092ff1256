"""Stopping and resuming real runs: Ctrl-C once, Ctrl-C twice, and SIGKILL mid-run against a real HTTP server."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elspeth_testing.llm_server import LLMTestServer, ServerConfig

pytestmark = pytest.mark.slow

SETTINGS = """
name: resumable
datasource: {{plugin: csv, options: {{path: data.csv, id_column: id}}}}
llm: {llm}
prompts: {{user: "Rate item {{{{ id }}}}: {{{{ text }}}}"}}
concurrency: {concurrency}
retry: {{max_attempts: 3, initial_delay_s: 0.05, timeout_s: 10}}
orchestrator: {{plugin: experiment, options: {{row_plugins: [score_extractor]{experiments}}}}}
sinks: [{{plugin: jsonl}}]
"""


def project(tmp_path: Path, rows: int, llm: str, concurrency: int, experiments: str = "") -> Path:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i:05d},review {i}\n" for i in range(rows)))
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.format(llm=llm, concurrency=concurrency, experiments=experiments))
    return path


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    out["OPENAI_API_KEY"] = "test-key"
    return out


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "elspeth", "run", str(path), "--no-progress"],
        cwd=path.parent,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def elspeth(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elspeth", *args],
        cwd=path.parent,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def runs(path: Path) -> list[dict]:
    done = elspeth(path, "runs", "list", "--settings", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_rows(path: Path, at_least: int, deadline_s: float = 60) -> None:
    """Wait until the store (read through the CLI) shows rows committed."""
    store = path.parent / "output" / "elspeth-runs.sqlite"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if store.exists():
            listed = runs(path)
            if listed and listed[0]["done"] >= at_least:
                return
        time.sleep(0.2)
    raise AssertionError(f"no {at_least} rows committed within {deadline_s} s")


def result_keys(path: Path) -> list[tuple[str, str]]:
    lines = (path.parent / "output" / "results.jsonl").read_text().splitlines()
    return [(json.loads(line)["experiment"], json.loads(line)["row_id"]) for line in lines]


MOCK_SLOW = "{plugin: mock, options: {latency_ms: 100}}"


def test_ctrl_c_stops_cleanly_prints_how_to_resume_and_the_resume_completes(tmp_path):
    path = project(tmp_path, 60, MOCK_SLOW, 4, ", experiments: [{name: a, baseline: true}, {name: b}]")
    proc = start(path)
    wait_for_rows(path, 8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the calls in flight" in err
    (run,) = runs(path)
    assert run["status"] == "interrupted"
    assert f"--resume {run['run_id']}" in out
    assert 0 < run["done"] < 120
    assert run["pending"] == 120 - run["done"]

    resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    keys = result_keys(path)
    assert len(keys) == 120
    assert len(set(keys)) == 120
    (run,) = runs(path)
    assert (run["status"], run["done"], run["pending"], run["attempts"]) == ("completed", 120, 0, 2)


def test_a_second_ctrl_c_quits_at_once_and_the_run_still_resumes(tmp_path):
    path = project(tmp_path, 80, "{plugin: mock, options: {latency_ms: 2000}}", 8)
    proc = start(path)
    wait_for_rows(path, 8)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 1.5  # did not wait for the 2 s calls in flight
    assert proc.returncode == 130
    assert "quitting now" in err
    (run,) = runs(path)
    assert run["status"] == "running"  # it never got to say otherwise: resume treats it as interrupted
    path.write_text(path.read_text().replace("latency_ms: 2000", "latency_ms: 2000"))
    resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(k[1] for k in result_keys(path)) == [f"r{i:05d}" for i in range(80)]


def test_sigkill_mid_run_then_resume_gives_every_row_once_and_repeats_only_calls_in_flight(tmp_path):
    rows, concurrency = 2000, 64
    with LLMTestServer(ServerConfig(latency_ms=20, jitter_ms=10, seed=7)) as server:
        llm = (
            f"{{plugin: openai, options: {{model: test-model, base_url: '{server.openai_base_url}', "
            f"max_connections: {concurrency}}}}}"
        )
        path = project(tmp_path, rows, llm, concurrency)
        proc = start(path)
        kill_after = random.Random().randint(300, 1500)
        deadline = time.monotonic() + 120
        while len(server.requests()) < kill_after and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        (run,) = runs(path)
        assert run["status"] == "running"
        assert 0 < run["done"] < rows
        resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        successes = server.successes_per_prompt()
    keys = result_keys(path)
    assert len(keys) == rows
    assert len(set(keys)) == rows
    assert len(successes) == rows  # every prompt was answered
    repeated = [prompt for prompt, count in successes.items() if count > 1]
    assert all(successes[p] == 2 for p in repeated)
    assert len(repeated) <= concurrency, f"{len(repeated)} prompts answered twice: more than were in flight"
