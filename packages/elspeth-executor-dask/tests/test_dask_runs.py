"""Batch and validation runs on a real LocalCluster: the same output as a local run, in input order, committed once."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from elspeth import RunFailed, load_registry, load_settings
from elspeth.engine import run_settings
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "ELSPETH_DASK_TEST_KEY"  # the cluster fixture puts the key in it before the workers start


def reviews(rows: int) -> str:
    """Rows whose quoted text holds newlines, quotes and commas, so partition borders fall inside quotes."""
    lines = ["id,product,review"]
    for i in range(rows):
        text = f'"line one of {i}\nline two, with ""quotes""\n"' if i % 2 else f"plain {i}"
        lines.append(f"r{i:03d},p{i % 5},{text}")
    return "\n".join(lines) + "\n"


def batch_settings(server: LLMTestServer, executor: dict[str, Any] | None, **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "dask-batch",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id", "encoding": "utf-8"}},
        "llm": {
            "plugin": "openai",
            "options": {"model": "gpt-test", "base_url": server.openai_base_url, "api_key_env": KEY_ENV},
        },
        "prompts": {"user": "{{ product }}: {{ review }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "batch", "options": {}},
        "sinks": [{"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}}],
    }
    if executor is not None:
        doc["executor"] = executor
    doc.update(top)
    return json.dumps(doc, indent=2)


def run_file(folder: Path, text: str, data: str) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(data, encoding="utf-8")
    (folder / "settings.yaml").write_text(text, encoding="utf-8")
    return run_settings(load_settings(folder / "settings.yaml"), load_registry())


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def stored_rows(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "output" / "elspeth-runs.sqlite") as db:
        return [r[0] for r in db.execute("SELECT row_id FROM rows ORDER BY row_id")]


@pytest.fixture
def server(llm_server: LLMTestServer, llm_key: tuple[str, str]) -> LLMTestServer:
    llm_server.configure(api_key=llm_key[1])
    return llm_server


def on(cluster: Any, **options: Any) -> dict[str, Any]:
    return {"plugin": "dask", "options": {"address": cluster.scheduler.address, **options}}


def test_a_batch_run_on_the_cluster_gives_the_local_runs_output_in_input_order(
    cluster: Any, server: LLMTestServer, tmp_path: Path
) -> None:
    data = reviews(60)
    run_file(tmp_path / "local", batch_settings(server, None), data)
    server.reset()
    # partitions of ~200 bytes: about 30 of them, most borders inside a quoted field
    result = run_file(tmp_path / "dask", batch_settings(server, on(cluster, partition_bytes=200)), data)
    local, remote = read_csv(tmp_path / "local/output/results.csv"), read_csv(tmp_path / "dask/output/results.csv")
    assert [r["row_id"] for r in remote] == [f"r{i:03d}" for i in range(60)]
    assert [{k: v for k, v in r.items() if k != "latency_s"} for r in remote] == [
        {k: v for k, v in r.items() if k != "latency_s"} for r in local
    ]
    assert 'line two, with "quotes"' in remote[1]["review"]
    assert stored_rows(tmp_path / "dask") == [f"r{i:03d}" for i in range(60)]
    figures = result.metadata.extra["executor"]
    assert figures["workers"] == 2
    assert figures["partitions_done"] == figures["partitions_submitted"] > 10
    assert len(server.requests("chat/completions")) == 60
    assert result.metadata.extra["llm_calls"] == 60  # what the workers' calls spent reached the client's ledger


def test_the_key_is_read_on_the_workers_and_never_sent(
    cluster: Any, server: LLMTestServer, tmp_path: Path, llm_key: tuple[str, str]
) -> None:
    key = llm_key[1]

    def record_specs(dask_scheduler: Any) -> None:
        from distributed.diagnostics.plugin import SchedulerPlugin

        class Recorder(SchedulerPlugin):
            name = "elspeth-recorder"

            def __init__(self) -> None:
                self.sent: list[bytes] = []

            def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
                task = dask_scheduler.tasks.get(key)
                if finish == "processing" and task is not None:
                    self.sent.append(pickle.dumps(task.run_spec))

        dask_scheduler.add_plugin(Recorder(), name="elspeth-recorder")

    def sent(dask_scheduler: Any) -> list[bytes]:
        return dask_scheduler.plugins["elspeth-recorder"].sent

    def held(dask_worker: Any) -> list[bytes]:
        import cloudpickle

        return [cloudpickle.dumps(value) for value in dask_worker.data.values()]

    cluster.run_on_scheduler(record_specs)
    stop = threading.Event()
    snapshots: list[bytes] = []

    def watch() -> None:  # what the workers hold while the run goes: the scattered spec, partitions, results
        while not stop.is_set():
            for values in cluster.run(held).values():
                snapshots.extend(values)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        server.configure(latency_ms=20)
        run_file(tmp_path, batch_settings(server, on(cluster, partition_bytes=300)), reviews(30))
        specs = cluster.run_on_scheduler(sent)
    finally:
        stop.set()
        watcher.join()
        cluster.run_on_scheduler(lambda dask_scheduler: dask_scheduler.remove_plugin("elspeth-recorder"))
    assert len(specs) >= 5
    assert snapshots
    assert any(b"data.csv" in s for s in specs + snapshots)  # what is sent names the input...
    assert not [s for s in specs + snapshots if key.encode() in s]  # ...and never holds the key
    # the server refuses a request without the key: every row answered means each worker read it from its environment
    assert [r.status for r in server.requests("chat/completions")] == [200] * 30
    assert len(read_csv(tmp_path / "output/results.csv")) == 30


def test_a_worker_killed_mid_run_has_its_partition_rerun_and_no_row_twice(
    cluster: Any, server: LLMTestServer, tmp_path: Path
) -> None:
    server.configure(latency_ms=150)
    pids = cluster.run(os.getpid)
    result: dict[str, Any] = {}

    def go() -> None:
        try:
            result["run"] = run_file(tmp_path, batch_settings(server, on(cluster, partition_bytes=250)), reviews(40))
        except BaseException as exc:  # the main thread asserts on it
            result["error"] = exc

    runner = threading.Thread(target=go)
    runner.start()
    deadline = time.monotonic() + 60
    while len(server.requests("chat/completions")) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    busy: list[str] = []
    while not busy and time.monotonic() < deadline:  # a worker with a partition in flight
        busy = [w for w, keys in cluster.processing().items() if any("run_partition" in str(k) for k in keys)]
        time.sleep(0.01)
    assert busy, "no partition was in flight"
    os.kill(pids[busy[0]], signal.SIGKILL)  # its partition was in flight: the scheduler runs it again elsewhere
    runner.join(120)
    assert "error" not in result, result.get("error")
    rows = read_csv(tmp_path / "output/results.csv")
    assert [r["row_id"] for r in rows] == [f"r{i:03d}" for i in range(40)]
    assert stored_rows(tmp_path) == [f"r{i:03d}" for i in range(40)]
    # the lost partition's calls are made again, unless the kill came before its first (the worker was still reading)
    assert len(server.requests("chat/completions")) >= 40
    answers = server.successes_per_prompt()  # counted at the server, by prompt: every row answered...
    assert len(answers) == 40
    # ...and again only the rows of the one lost partition (250 bytes hold at most 16 rows of 16 bytes or more)
    assert sum(n - 1 for n in answers.values()) <= 16
    cluster.wait_for_workers(2, timeout=60)
    assert pids[busy[0]] not in cluster.run(os.getpid).values()  # the worker holding the partition was lost


def test_an_unreachable_scheduler_fails_the_run_naming_the_setting(server: LLMTestServer, tmp_path: Path) -> None:
    from elspeth_testing.services import free_port

    executor = {"plugin": "dask", "options": {"address": f"tcp://127.0.0.1:{free_port()}", "connect_timeout_s": 1}}
    with pytest.raises(RunFailed, match=r"cannot reach the scheduler at tcp://127\.0\.0\.1:\d+ \(executor\.options"):
        run_file(tmp_path, batch_settings(server, executor), reviews(3))
    assert not (tmp_path / "output/results.csv").exists()


def test_a_resumed_run_sends_no_finished_row_to_the_llm_again(
    cluster: Any, server: LLMTestServer, tmp_path: Path
) -> None:
    import asyncio

    from elspeth.engine import execute, prepare
    from elspeth.resume import RunOptions

    first = run_file(tmp_path, batch_settings(server, on(cluster, partition_bytes=300)), reviews(20))
    assert len(server.requests("chat/completions")) == 20
    server.reset()
    loaded = load_settings(tmp_path / "settings.yaml")
    options = RunOptions(resume=first.metadata.run_id)
    again = asyncio.run(_resume(loaded, options, prepare, execute))
    assert server.requests("chat/completions") == []  # the workers skipped every finished row
    assert [r["row_id"] for r in read_csv(tmp_path / "output/results.csv")] == [f"r{i:03d}" for i in range(20)]
    assert again.metadata.resumed_rows == 20


async def _resume(loaded: Any, options: Any, prepare: Any, execute: Any) -> Any:
    return await execute(await prepare(loaded, load_registry(), options=options))


def test_a_partition_that_keeps_failing_fails_the_run_naming_it_and_its_rows(cluster: Any, tmp_path: Path) -> None:
    import asyncio

    from elspeth import Row, ShippedRows
    from elspeth.engine import prepare
    from elspeth_dask.executor import DaskOptions
    from elspeth_dask.stream import run_on_cluster

    # classes of the test itself: the workers cannot import this module, so dask ships them by value
    class BrokenPart:
        """A partition that cannot be read where it runs (its storage went away)."""

        label = "people.csv from line 5 (bytes 40-80)"
        count = 3

        def read(self) -> Any:
            raise OSError("the disk went away")

    class ThreeParts:
        """A source's partitions, the middle one unreadable on every worker."""

        def partitions(self, target_bytes: int, map_fn: Any) -> list[Any]:
            def rows(start: int) -> ShippedRows:
                return ShippedRows([Row(f"v{i}", {"email": f"u{i}@example.org"}, i) for i in range(start, start + 3)])

            return [rows(0), BrokenPart(), rows(6)]

    settings = {
        "name": "broken",
        "datasource": {"plugin": "csv", "options": {"path": "people.csv"}},
        "orchestrator": {"plugin": "validation", "options": {"required": ["email"]}},
        "executor": on(cluster),
        "store": {"enabled": False},
        "sinks": [{"plugin": "csv", "options": {"path": "valid.csv"}}],
    }
    (tmp_path / "people.csv").write_text("email\na@example.org\n", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
    prepared = asyncio.run(prepare(load_settings(tmp_path / "settings.yaml"), load_registry()))
    table = prepared.table.__class__(["email"], ThreeParts())
    options = DaskOptions(address=cluster.scheduler.address)
    with pytest.raises(RunFailed) as failed:
        asyncio.run(run_on_cluster(cluster, prepared.orchestrator, table, prepared.context, options))
    message = str(failed.value)
    assert "partition people.csv from line 5 (bytes 40-80) (3 rows) failed on the cluster" in message
    assert "OSError: the disk went away" in message
    assert "--resume continues" in message
