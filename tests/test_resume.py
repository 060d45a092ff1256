"""Stopping and resuming real runs: Ctrl-C once, Ctrl-C twice, and SIGKILL mid-run against a real HTTP server."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from elspeth.store import RunStore
from elspeth_testing.llm_server import LLMTestServer, ServerConfig

pytestmark = pytest.mark.slow

SETTINGS = """
name: resumable
datasource: {{plugin: csv, options: {{path: data.csv, id_column: id}}}}
llm: {llm}
prompts: {{user: "Rate item {{{{ id }}}}: {{{{ text }}}}"}}
concurrency: {concurrency}
retry: {{max_attempts: 3, initial_delay_s: 0.05, timeout_s: 10}}
orchestrator: {orchestrator}
sinks: [{{plugin: jsonl}}]
"""

TWO_EXPERIMENTS = "[{name: a, baseline: true}, {name: b, prompts: {user: 'Variant b rates {{ id }}: {{ text }}'}}]"


def experiment(experiments: str | None = None) -> str:
    """The experiment orchestrator's settings; ``experiments`` is its YAML list of experiments."""
    listed = f", experiments: {experiments}" if experiments else ""
    return f"{{plugin: experiment, options: {{row_plugins: [score_extractor]{listed}}}}}"


ORCHESTRATORS = {
    "experiment": experiment(),
    # commits each row as it finishes, ahead of the reorder buffer that keeps its output in input order
    "batch": "{plugin: batch}",
}


def project(tmp_path: Path, rows: int, llm: str, concurrency: int, orchestrator: str | None = None) -> Path:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i:05d},review {i}\n" for i in range(rows)))
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.format(llm=llm, concurrency=concurrency, orchestrator=orchestrator or experiment()))
    return path


def prompt_of(group: str, row_id: str) -> str:
    """The user prompt the settings above send for ``row_id`` in experiment ``group``."""
    text = f"review {int(row_id[1:])}"
    return f"Variant b rates {row_id}: {text}" if group == "b" else f"Rate item {row_id}: {text}"


def openai_llm(server: LLMTestServer, concurrency: int) -> str:
    return (
        f"{{plugin: openai, options: {{model: test-model, base_url: '{server.openai_base_url}', "
        f"max_connections: {concurrency}}}}}"
    )


def committed_prompts(path: Path, run_id: str) -> set[str]:
    """The prompts of the rows committed to the run store (read from the file, as a resume does)."""
    store = RunStore.open(path.parent / "output" / "elspeth-runs.sqlite", create=False)
    try:
        return {prompt_of(group, row_id) for group, row_id in store.finished_rows(run_id)}
    finally:
        store.close()


def chat_prompts(server: LLMTestServer, settle_s: float = 0.5) -> list[str]:
    """Every chat request's prompt the server has seen, whatever its outcome, once no more arrive."""
    seen = server.requests("chat/completions")
    while True:  # a request cut off by a kill is recorded when the server notices the client went
        time.sleep(settle_s)
        now = server.requests("chat/completions")
        if len(now) == len(seen):
            return [r.prompt for r in now]
        seen = now


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
    lines = [json.loads(line) for line in (path.parent / "output" / "results.jsonl").read_text().splitlines()]
    return [(line.get("experiment", ""), line["row_id"]) for line in lines]


def test_ctrl_c_stops_cleanly_prints_how_to_resume_and_the_resume_sends_only_the_pending_prompts(tmp_path):
    concurrency = 4
    with LLMTestServer(ServerConfig(latency_ms=100, seed=5)) as server:
        path = project(tmp_path, 60, openai_llm(server, concurrency), concurrency, experiment(TWO_EXPERIMENTS))
        proc = start(path)
        wait_for_rows(path, 8)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "finishing the calls in flight" in err
        (run,) = runs(path)
        assert run["status"] == "interrupted"
        assert f"resume with: elspeth run {path} --resume {run['run_id']}" in out
        assert 0 < run["done"] < 120
        assert run["pending"] == 120 - run["done"]
        first = Counter(chat_prompts(server))
        committed = committed_prompts(path, run["run_id"])
        # the calls in flight at Ctrl-C were finished and committed: everything sent is in the store, once
        assert set(first) == committed
        assert set(first.values()) == {1}

        resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        second = Counter(chat_prompts(server)) - first
    every = {prompt_of(g, f"r{i:05d}") for g in ("a", "b") for i in range(60)}
    assert second == Counter(every - committed)  # exactly the pending prompts, each once
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
    # a faster mock answers the same, but it is a changed setting: refused, naming it, unless --force
    path.write_text(path.read_text().replace("latency_ms: 2000", "latency_ms: 20"))
    refused = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
    assert refused.returncode == 2
    assert f"the settings changed since run {run['run_id']} (llm.options.latency_ms)" in refused.stderr
    resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--force", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(k[1] for k in result_keys(path)) == [f"r{i:05d}" for i in range(80)]
    (run,) = runs(path)
    assert (run["status"], run["done"], run["attempts"]) == ("completed", 80, 2)


@pytest.mark.parametrize("orchestrator", ["experiment", "batch"])
def test_sigkill_mid_run_then_resume_gives_every_row_once_and_repeats_only_calls_in_flight(tmp_path, orchestrator):
    rows, concurrency = 2000, 64
    seed = int(os.environ.get("ELSPETH_TEST_KILL_SEED") or random.randrange(2**32))
    print(f"kill seed {seed}: ELSPETH_TEST_KILL_SEED={seed} repeats this kill point")
    kill_after = random.Random(seed).randint(300, 1500)
    with LLMTestServer(ServerConfig(latency_ms=20, jitter_ms=10, seed=7)) as server:
        path = project(tmp_path, rows, openai_llm(server, concurrency), concurrency, ORCHESTRATORS[orchestrator])
        proc = start(path)
        deadline = time.monotonic() + 120
        while len(server.requests()) < kill_after and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, f"the run finished before it could be killed (seed {seed})"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        before_kill = chat_prompts(server)  # every request the killed run sent, answered or not
        (run,) = runs(path)
        assert run["status"] == "running"
        assert 0 < run["done"] < rows
        committed = committed_prompts(path, run["run_id"])
        in_flight = set(before_kill) - committed  # sent but not committed when the process died
        resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        seen = Counter(chat_prompts(server))
        answered = server.successes_per_prompt()
    keys = result_keys(path)
    assert len(keys) == rows
    assert len(set(keys)) == rows
    assert len(answered) == rows  # every prompt was answered
    repeated = {prompt for prompt, count in seen.items() if count > 1}
    assert all(seen[p] == 2 for p in repeated), f"a prompt was sent three times or more (seed {seed})"
    assert repeated <= in_flight, f"finished rows were sent again: {sorted(repeated - in_flight)[:5]} (seed {seed})"
    assert len(repeated) <= concurrency, f"{len(repeated)} prompts sent twice: more than were in flight (seed {seed})"


@pytest.mark.parametrize("orchestrator", ["experiment", "batch"])
def test_sigkill_while_the_first_row_hangs_loses_none_of_the_rows_that_finished_after_it(tmp_path, orchestrator):
    # the first row never answers, so every row that finishes does so ahead of it: the batch orchestrator's
    # reorder buffer holds them back from the output (and stalls the run at its window, 64 rows here), but
    # each must reach the store the moment it finishes
    rows, concurrency = 300, 8
    hung = prompt_of("", "r00000")
    with LLMTestServer(ServerConfig(latency_ms=5, seed=3)) as server:
        server.script(["hang"], match="Rate item r00000:")
        path = project(tmp_path, rows, openai_llm(server, concurrency), concurrency, ORCHESTRATORS[orchestrator])
        # the hung call outlasts the test: not abandoned early as stalled either (retry.stall_factor off)
        path.write_text(path.read_text().replace("timeout_s: 10", "timeout_s: 60, stall_factor: null"))
        proc = start(path)
        wait_for_rows(path, 60)
        chat_prompts(server)  # until no new call arrives: every row that can finish has finished
        assert proc.poll() is None, "the hung call ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        before_kill = Counter(chat_prompts(server))
        (run,) = runs(path)
        committed = committed_prompts(path, run["run_id"])
        assert run["status"] == "running"
        assert committed == set(before_kill) - {hung}, "a row that finished before the kill was not committed"
        assert run["pending"] == rows - run["done"] - run["failed"], "the row count is known from the start"
        resumed = elspeth(path, "run", str(path), "--resume", run["run_id"], "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        after = Counter(chat_prompts(server)) - before_kill
    every = {prompt_of("", f"r{i:05d}") for i in range(rows)}
    assert after == Counter(every - committed), "the resume sent every row not committed, once"
    assert {prompt for prompt, n in (before_kill + after).items() if n > 1} == {hung}
    assert sorted(key[1] for key in result_keys(path)) == [f"r{i:05d}" for i in range(rows)]
    (run,) = runs(path)
    assert (run["status"], run["done"], run["pending"]) == ("completed", rows, 0)
