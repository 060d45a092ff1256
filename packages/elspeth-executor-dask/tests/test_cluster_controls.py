"""Rate limits and the budget held across a LocalCluster of 4 workers, measured at the LLM test server."""

from __future__ import annotations

import csv
import itertools
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, LLMRequest, load_registry, load_settings
from elspeth.engine import run_settings
from elspeth_dask.coordinator import Coordinator
from elspeth_testing.llm_fixtures import LLMServerFactory
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "ELSPETH_DASK_TEST_KEY"
KEY = "sk-dask-test-key-7f3a9c1e5b"


@pytest.fixture
def server(llm_server_factory: LLMServerFactory) -> LLMTestServer:
    """The test server in a process of its own, so the arrival times it records are not the client's GIL's."""
    return llm_server_factory(process=True, api_key=KEY)


def settings(server: LLMTestServer, cluster: Any, **top: Any) -> dict[str, Any]:
    return {
        "name": "dask-limits",
        "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id", "encoding": "utf-8"}},
        "llm": {
            "plugin": "openai",
            "options": {"model": "gpt-test", "base_url": server.openai_base_url, "api_key_env": KEY_ENV},
        },
        "prompts": {"user": "review {{ id }}: {{ text }}"},
        "concurrency": 8,
        "orchestrator": {"plugin": "batch", "options": {}},
        "executor": {"plugin": "dask", "options": {"address": cluster.scheduler.address, "partition_bytes": 400}},
        "sinks": [{"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}}],
        **top,
    }


def run(folder: Path, doc: dict[str, Any], rows: int) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,text"] + [f"r{i:04d},text of review {i}" for i in range(rows)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "settings.yaml").write_text(json.dumps(doc), encoding="utf-8")
    return run_settings(load_settings(folder / "settings.yaml"), load_registry())


def arrivals(server: LLMTestServer) -> list[float]:
    return sorted(r.t for r in server.requests("chat/completions"))


def busiest(times: list[float], window: float) -> float:
    """The highest rate, per second, the server saw over any ``window`` seconds (a window from each arrival).

    Over 5 seconds, not 1: on this shared 2-core machine (load 10-17) a process is often not run for
    100-400 ms after its call left the limiter on time, and the calls held up meanwhile reach the
    server at once, a burst that is the machine's, not the limiter's (the workers' own departure
    times stay within 20 ms of their slots).
    """
    j, most = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + window:
            j += 1
        most = max(most, j - i)
    return most / window


def test_four_workers_share_one_limit_of_n_requests_per_second(
    four: Any, server: LLMTestServer, tmp_path: Path
) -> None:
    n, rows = 20, 240
    limiter = {"plugin": "token_bucket", "options": {"requests_per_minute": 60 * n, "burst_seconds": 0.05}}
    doc = settings(server, four, rate_limiter=limiter)
    doc["executor"]["options"]["partition_bytes"] = 1400  # 4 partitions at a time, one a worker
    doc["concurrency"] = 4  # each worker keeps 4 calls waiting: enough to use its share of a fast server
    result = run(tmp_path, doc, rows)
    times = arrivals(server)
    assert len(times) == rows
    seen = busiest(times, 5.0)
    assert seen <= n * 1.05, f"{seen} requests/s against a limit of {n}"  # not 4N, as 4 limiters of N would allow
    mean = (len(times) - 1) / (times[-1] - times[0])
    # 0.85 N when the machine has the CPU for it (19.8 of 20 at a load of 11); this shared machine often has not
    assert mean >= 0.6 * n, f"the server saw {mean:.1f} requests/s against a limit of {n}"
    controls = result.metadata.extra["executor"]["controls"]
    assert controls["slots"] >= rows
    assert controls["leases"] < rows  # leases of several slots: the coordinator is not on every call's path


def test_tokens_per_minute_hold_across_the_cluster(four: Any, server: LLMTestServer, tmp_path: Path) -> None:
    # a request takes its prompt (~6 tokens) and max_tokens=50 from a bucket of 56 tokens refilled at 56 a second;
    # the tokens really used (fewer) are given back as the workers report them
    options = {"requests_per_minute": 6000, "tokens_per_minute": 3360, "burst_seconds": 1.0}
    doc = settings(server, four, rate_limiter={"plugin": "token_bucket", "options": options})
    doc["llm"]["options"]["max_tokens"] = 50
    doc["executor"]["options"]["partition_bytes"] = 50  # ~6 partitions over the 4 workers
    run(tmp_path, doc, 12)
    times = arrivals(server)
    assert len(times) == 12
    # the 100 requests/s alone would take 0.1 s, and four buckets of their own (one per worker) about 2 s
    assert times[-1] - times[0] >= 3.0


def test_a_budget_stops_the_whole_cluster_with_at_most_the_calls_in_flight_over_it(
    four: Any, server: LLMTestServer, tmp_path: Path
) -> None:
    server.configure(latency_ms=50)
    # the test server answers ~10 prompt and ~10 completion tokens: about $0.0002 a call at these prices
    prices = {"*": {"input": 10.0, "output": 10.0}}
    doc = settings(server, four, cost_tracker={"plugin": "price_table", "options": {"prices": prices, "budget": 0.004}})
    doc["concurrency"] = 2
    result = run(tmp_path, doc, 400)
    calls = len(server.requests("chat/completions"))
    controls = result.metadata.extra["executor"]["controls"]
    per_call = controls["spent"] / calls
    in_flight = 4 * 2  # workers x concurrency
    assert controls["spent"] >= 0.004
    assert calls <= 0.004 / per_call + in_flight  # the budget's calls, and at most those in flight when it was reached
    assert 0.004 / per_call >= 10  # the budget is worth many calls: one budget for the cluster, not one per worker
    assert result.metadata.outcome.status == "stopped"
    assert "budget of 0.004 USD reached on the cluster" in (result.metadata.outcome.stop_reason or "")
    with (tmp_path / "output" / "results.csv").open(encoding="utf-8", newline="") as handle:
        results = list(csv.DictReader(handle))
    assert len(results) == calls  # every call paid for is a committed result: nothing done is lost


def test_the_key_never_travels_with_the_controls(four: Any, server: LLMTestServer, tmp_path: Path) -> None:
    def record(dask_scheduler: Any) -> None:
        from distributed.diagnostics.plugin import SchedulerPlugin

        class Recorder(SchedulerPlugin):
            def __init__(self) -> None:
                self.sent: list[bytes] = []

            def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
                task = dask_scheduler.tasks.get(key)
                if finish == "processing" and task is not None:
                    self.sent.append(pickle.dumps(task.run_spec))

        dask_scheduler.add_plugin(Recorder(), name="elspeth-controls-recorder")

    four.run_on_scheduler(record)
    limiter = {"plugin": "adaptive", "options": {"initial_rps": 200}}
    tracker = {"plugin": "price_table", "options": {"prices": {"*": {"input": 1, "output": 1}}, "budget": 10}}
    try:
        result = run(tmp_path, settings(server, four, rate_limiter=limiter, cost_tracker=tracker), 40)
        sent = four.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["elspeth-controls-recorder"].sent)
    finally:
        four.run_on_scheduler(lambda dask_scheduler: dask_scheduler.remove_plugin("elspeth-controls-recorder"))
    assert any(b"Coordinator" in s for s in sent)  # the coordinator's construction was recorded too...
    assert any(KEY_ENV.encode() in s for s in sent)  # ...and the settings, naming the variable...
    assert not [s for s in sent if KEY.encode() in s]  # ...but never its value
    # the server refuses a request without the key: every row answered, so each worker read it from its environment
    assert [r.status for r in server.requests("chat/completions")] == [200] * 40
    assert result.metadata.extra["executor"]["controls"]["slots"] >= 40


def test_a_429_cuts_the_clusters_adaptive_rate_once_for_all_workers() -> None:
    from elspeth.builtins.adaptive import Adaptive

    coordinator = Coordinator((Adaptive, Adaptive.Options(initial_rps=100)), None)
    lane = {"endpoint": "e", "key_id": "k"}
    starts, epoch, _ = coordinator.lease(lane, 5, 0, [])
    assert len(starts) == 5
    assert epoch == 0
    assert [round(b - a, 3) for a, b in itertools.pairwise(starts)] == [0.01] * 4  # 100/s, one timeline
    for _ in range(3):  # three workers' 429s from the same epoch: one cut
        coordinator.rate_limited({**lane, "rate_epoch": epoch}, None)
    probe = LLMRequest("", "", {}, dict(lane))
    assert coordinator.limiter is not None
    assert coordinator.limiter.current_rate(probe) == 50.0  # halved once in slow start, not three times
    later, epoch, _ = coordinator.lease(lane, 2, 0, [])
    assert epoch == 1
    assert round(later[1] - later[0], 3) == 0.02


def test_a_limiter_that_cannot_be_shared_is_refused_before_any_row() -> None:
    from types import SimpleNamespace

    from elspeth_dask.coordinator import coordinator_args

    class PerProcess:
        name = "per_process"

        async def acquire(self, request: LLMRequest) -> None:
            return None

    ctx = SimpleNamespace(llm_factory=SimpleNamespace(rate_limiter=PerProcess(), cost_tracker=None))
    with pytest.raises(ConfigError, match=r"rate_limiter: 'per_process' cannot hold its limit across the cluster"):
        coordinator_args(ctx)  # type: ignore[arg-type]
