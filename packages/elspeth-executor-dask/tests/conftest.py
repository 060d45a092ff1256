"""One real LocalCluster of 2 single-threaded worker processes for the whole module (clusters are slow to start),
and clusters of real `dask scheduler` / `dask worker` processes for the tests that kill them.

The LLM key is put into the environment before the workers start, as a real cluster's workers have
it in theirs: the run must read it there, never ship it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import elspeth_llm_openai.sdk  # noqa: F401  # import openai now, not inside the first call's timeout
from elspeth_testing.services import free_port, wait_for_port

KEY_ENV = "ELSPETH_DASK_TEST_KEY"
KEY = "sk-dask-test-key-7f3a9c1e5b"


def local_cluster(workers: int) -> Iterator[Any]:
    """A client of a LocalCluster of ``workers`` single-threaded processes, the key in their environment."""
    from distributed import Client, LocalCluster

    os.environ[KEY_ENV] = KEY
    local = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()
        os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    yield from local_cluster(2)


@pytest.fixture(scope="module")
def four() -> Iterator[Any]:
    """Four workers: the cluster-wide controls' tests (tests/test_cluster_controls.py)."""
    yield from local_cluster(4)


@pytest.fixture
def llm_key() -> tuple[str, str]:
    """(the environment variable the settings name, the key the workers find in it)."""
    return KEY_ENV, KEY


class ProcessCluster:
    """A scheduler and ``workers`` single-threaded workers without nannies (a killed worker stays dead)."""

    def __init__(self, folder: Path, env: dict[str, str], *, allowed_failures: int = 3) -> None:
        self.folder, self.port = folder, free_port()
        self.env = {**os.environ, **env, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        self._logs.append(log)
        command = [sys.executable, "-m", "dask", *args]
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--dashboard-address", ":0"
        )
        wait_for_port(self.port, timeout=60, process=self.scheduler)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            f"worker{len(self.workers)}", "worker", self.address, "--nthreads", "1", "--no-nanny",
            "--host", "127.0.0.1", "--no-dashboard",
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def start(self, workers: int) -> ProcessCluster:
        self.start_scheduler()
        for _ in range(workers):
            self.start_worker()
        self.wait_for_workers(workers)
        return self

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout=30)

    def wait_for_workers(self, count: int) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=60)

    def executing(self) -> dict[str, int]:
        """Tasks each worker is running now, as the workers see them (the scheduler forgets a cancelled one at once)."""
        with self.client() as client:
            counts: dict[str, int] = client.run(lambda dask_worker: len(dask_worker.state.executing))
            return counts

    def wait_until_idle(self, timeout: float = 60) -> None:
        """Until no worker runs a task (the tasks of a client that is gone stopped)."""
        deadline = time.monotonic() + timeout
        while any(self.executing().values()):
            assert time.monotonic() < deadline, f"tasks still running on the workers: {self.executing()}"
            time.sleep(0.2)

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            if process is not None:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        for log in self._logs:
            log.close()


@pytest.fixture
def process_cluster(tmp_path: Path) -> Iterator[Callable[..., ProcessCluster]]:
    """``process_cluster(workers, allowed_failures=3)``: a started cluster of processes, stopped after the test."""
    started: list[ProcessCluster] = []

    def start(workers: int, **options: Any) -> ProcessCluster:
        cluster = ProcessCluster(tmp_path, {KEY_ENV: KEY}, **options)
        started.append(cluster)
        return cluster.start(workers)

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()
