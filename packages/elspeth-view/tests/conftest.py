"""A run store written by core's own RunStore (the writer the runs use), and the viewer serving it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from elspeth_view.server import make_server

from elspeth import Failure, Record
from elspeth.store import RunStore
from elspeth.totals import RunTotals


def write_run(store: RunStore, run_id: str, rows: int, *, answer: str = "yes", fail_every: int = 0) -> None:
    """A two-experiment run: ``baseline`` and ``variant`` each answer every row; some variant rows fail."""
    store.begin_run(
        run_id,
        name=f"suite {run_id}",
        orchestrator="experiment",
        settings={"llm": {"plugin": "test"}},
        settings_hash="h",
        settings_path=None,
        plugins=[],
    )
    finished: list[tuple[Record | None, Failure | None]] = []
    for i in range(rows):
        inputs = {"question": f"question number {i}"}
        finished.append((Record(f"r{i:04d}", inputs, {"answer": "yes"}, {"score": 3, "cost": 0.001}, "baseline"), None))
        if fail_every and i % fail_every == 0:
            attempts = [{"attempt": 1, "error": "HTTP 500"}, {"attempt": 2, "error": "HTTP 500"}]
            finished.append((None, Failure(f"r{i:04d}", inputs, "llm", "server error 500", attempts, "variant")))
        else:
            finished.append((Record(f"r{i:04d}", inputs, {"answer": answer}, {"score": 4}, "variant"), None))
    store.commit_rows(run_id, finished)
    meta = {"comparisons": {"variant": {"mean_difference": 1.0, "p_value": 0.001}}}
    store.finish_run(run_id, "completed", meta, RunTotals(cost=0.25, llm_calls=2 * rows, duration_s=12.5))


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "elspeth-runs.sqlite"
    store = RunStore.open(path)
    write_run(store, "run-a", 120, fail_every=10)
    write_run(store, "run-b", 120, answer="no", fail_every=0)
    store.close()
    return path


@pytest.fixture
def viewer(store_file: Path) -> Iterator[str]:
    server = make_server(store_file)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
