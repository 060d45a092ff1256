"""A PostgreSQL run store on a cluster of real processes: partitions commit concurrently, and kills lose nothing.

The client is ``elspeth run`` in a subprocess, the cluster real ``dask scheduler`` / ``dask worker``
processes, the store a real PostgreSQL server (the ``postgres_url`` fixture) and the LLM the test
server, which counts the answers each prompt got: after any kill and a ``--resume``, every row is
in the sink and the store once, no row committed before the kill is asked again, and at most the
calls in flight at the kill are made twice.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "ELSPETH_DASK_TEST_KEY"
ROWS = 40
CONCURRENCY = 2  # calls in flight per partition: two single-threaded workers make at most 4 at once


def write_run(folder: Path, server: LLMTestServer, url: str, address: str, partition_bytes: int = 100) -> Path:
    lines = ["id,text"] + [f"r{i:03d},text number {i:03d}" for i in range(ROWS)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = {
        "name": "dask-pg",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id", "encoding": "utf-8"}},
        "llm": {
            "plugin": "openai",
            "options": {"model": "gpt-test", "base_url": server.openai_base_url, "api_key_env": KEY_ENV},
        },
        "prompts": {"user": "{{ text }}"},
        "concurrency": CONCURRENCY,
        "orchestrator": {"plugin": "batch", "options": {}},
        "store": {"url": url},
        "executor": {"plugin": "dask", "options": {"address": address, "partition_bytes": partition_bytes}},
        "sinks": [{"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}}],
    }
    path = folder / "settings.yaml"
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return path


def partition_of(number: int, size: int) -> int:
    """The ``size``-byte partition of row ``r{number}``: the one its first byte is in (8 header bytes, 21 a row)."""
    return (8 + 21 * number) // size


def elspeth(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, KEY_ENV: os.environ.get(KEY_ENV, "")}
    command = [sys.executable, "-m", "elspeth", "run", "settings.yaml", "--no-progress", *args]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(url: str) -> list[tuple[str, str, int]]:
    """``(run_id, row_id, seq)`` of every committed row, in commit order."""
    with psycopg.connect(url) as db:
        return [tuple(r) for r in db.execute("SELECT run_id, row_id, seq FROM rows ORDER BY seq")]  # type: ignore[misc]


def wait_for_answers(server: LLMTestServer, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while len(server.successes_per_prompt()) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made too few calls"
        time.sleep(0.02)


def resume_and_check(folder: Path, server: LLMTestServer, url: str, committed: set[str]) -> dict[str, int]:
    """Resume the run, check every row is there once, and return the answers each prompt got."""
    (run_id,) = {r[0] for r in stored(url)}
    resumed = elspeth(folder, "--resume", run_id)
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, (out, err)
    with (folder / "output/results.csv").open(encoding="utf-8", newline="") as handle:
        assert [r["row_id"] for r in csv.DictReader(handle)] == [f"r{i:03d}" for i in range(ROWS)]
    rows = stored(url)
    assert sorted(r[1] for r in rows) == [f"r{i:03d}" for i in range(ROWS)]  # each row once in the store
    answers = server.successes_per_prompt()
    assert sorted(answers) == [f"text number {i:03d}" for i in range(ROWS)]
    # no row committed before the kill was asked again
    assert [p for p in answers if answers[p] > 1 and f"r{p[-3:]}" in committed] == []
    return answers


@pytest.fixture
def start(
    process_cluster: Any,
    llm_server: LLMTestServer,
    llm_key: tuple[str, str],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[Any, subprocess.Popen[str]]]:
    """``start(latency_ms, partition_bytes, **cluster_options)``: a cluster of 2 workers, and the run begun on it."""
    monkeypatch.setenv(KEY_ENV, llm_key[1])  # the client's environment, as the workers have it in theirs

    def begin(latency_ms: int = 150, partition_bytes: int = 100, **cluster_options: Any) -> tuple[Any, Any]:
        llm_server.configure(api_key=llm_key[1], latency_ms=latency_ms)
        cluster = process_cluster(2, **cluster_options)
        write_run(tmp_path, llm_server, postgres_url, cluster.address, partition_bytes)
        return cluster, elspeth(tmp_path)

    return begin


def twice(answers: dict[str, int]) -> list[str]:
    return sorted(p for p, n in answers.items() if n > 1)


def test_partitions_commit_concurrently_and_a_client_killed_with_sigkill_resumes_repeating_no_finished_row(
    start: Any, llm_server: LLMTestServer, postgres_url: str, tmp_path: Path
) -> None:
    cluster, client = start(partition_bytes=200)  # ~10 rows, 0.8 s of calls
    wait_for_answers(llm_server, 20, client)
    client.send_signal(signal.SIGKILL)
    client.communicate(timeout=30)
    cluster.wait_until_idle()  # the tasks of the killed client stopped taking rows and finished the ones in flight
    before = stored(postgres_url)
    committed = {r[1] for r in before}
    assert len(committed) >= 20  # what the workers finished is in the store, though the client never got it
    # two partitions' commits interleave: each worker commits its own rows as they finish, not the client in turn
    # (the client would commit them partition after partition): a row of one partition between two of another
    parts = [partition_of(int(row_id[1:]), 200) for _, row_id, _ in before]
    spans = {p: (parts.index(p), len(parts) - 1 - parts[::-1].index(p)) for p in set(parts)}
    assert any(a[0] < b[0] < a[1] for a in spans.values() for b in spans.values()), parts
    answers = resume_and_check(tmp_path, llm_server, postgres_url, committed)
    assert len(twice(answers)) <= 2 * CONCURRENCY, twice(answers)


def busy_worker(cluster: Any) -> int:
    """The index of a worker process running a partition now."""
    with cluster.client() as client:
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for address, keys in client.processing().items():
                if any("run_partition" in str(k) for k in keys):
                    return [w.pid for w in cluster.workers].index(pids[address])  # type: ignore[no-any-return]
            time.sleep(0.01)
    raise AssertionError("no partition was in flight")


def test_a_partition_whose_worker_is_killed_too_often_fails_the_run_naming_it_and_resume_completes(
    start: Any, llm_server: LLMTestServer, postgres_url: str, tmp_path: Path
) -> None:
    cluster, client = start(allowed_failures=0)  # the first worker lost with a partition fails it
    wait_for_answers(llm_server, 8, client)
    cluster.kill(cluster.workers[busy_worker(cluster)])
    out, err = client.communicate(timeout=120)
    assert client.returncode == 1, (out, err)
    assert re.search(r"partition data\.csv from line \d+ \(bytes \d+-\d+\) \(\d+ rows\) failed on the cluster", err)
    assert "KilledWorker" in err
    assert "resume with: elspeth run settings.yaml --resume" in out + err
    cluster.start_worker()
    cluster.wait_for_workers(2)
    cluster.wait_until_idle()  # the other partitions of the failed run were cancelled: they stopped
    committed = {r[1] for r in stored(postgres_url)}
    answers = resume_and_check(tmp_path, llm_server, postgres_url, committed)
    assert len(twice(answers)) <= CONCURRENCY, twice(answers)  # only the killed worker's calls in flight


def test_a_killed_scheduler_fails_the_run_and_resume_on_a_new_one_repeats_no_finished_row(
    start: Any, llm_server: LLMTestServer, postgres_url: str, tmp_path: Path
) -> None:
    cluster, client = start()
    wait_for_answers(llm_server, 12, client)
    cluster.kill(cluster.scheduler)
    out, err = client.communicate(timeout=180)
    assert client.returncode == 1, (out, err)
    assert "resume with: elspeth run settings.yaml --resume" in out + err
    for worker in cluster.workers:  # a worker that lost its scheduler closes (Dask's own behaviour)
        worker.wait(120)
    committed = {r[1] for r in stored(postgres_url)}
    assert len(committed) >= 12
    cluster.workers.clear()
    cluster.start(2)  # a new scheduler on the same address, new workers
    answers = resume_and_check(tmp_path, llm_server, postgres_url, committed)
    assert len(twice(answers)) <= 2 * CONCURRENCY, twice(answers)  # at most the calls in flight at the kill


def test_ctrl_c_stops_the_clusters_work_says_how_to_resume_and_the_resume_loses_and_repeats_nothing(
    start: Any, llm_server: LLMTestServer, postgres_url: str, tmp_path: Path
) -> None:
    # partitions of ~20 rows (4 s of calls each): a task that ran on after Ctrl-C would make many more calls
    cluster, client = start(latency_ms=200, partition_bytes=400)
    wait_for_answers(llm_server, 6, client)
    client.send_signal(signal.SIGINT)
    at_sigint = len(llm_server.requests("chat/completions"))
    out, err = client.communicate(timeout=120)
    assert client.returncode == 130, (out, err)
    assert "resume with: elspeth run settings.yaml --resume" in out + err
    with cluster.client() as watcher:
        assert not any(watcher.processing().values())  # the scheduler has no task left
    cluster.wait_until_idle(timeout=10)  # and no worker thread runs on
    # the two running partitions had ~30 rows to go; they stopped within a poll (0.2 s: a call or two each)
    assert len(llm_server.requests("chat/completions")) <= at_sigint + 3 * 2 * CONCURRENCY
    committed = {r[1] for r in stored(postgres_url)}
    answers = resume_and_check(tmp_path, llm_server, postgres_url, committed)
    assert twice(answers) == []  # the calls in flight at Ctrl-C finished and were committed
