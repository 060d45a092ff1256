"""Throughput with the run store on against off, in one run.

    python benchmarks/store/bench.py [--rows 2000] [--concurrency 64] [--latency-ms 0,50] [--repeats 7] [--target 0.95]
                                     [--backend sqlite|postgres]

The same settings (csv datasource, the ``experiment`` orchestrator, the ``openai`` client against the
LLM test server in a child process, a ``jsonl`` sink) run with ``store.enabled`` true and false,
alternately, ``--repeats`` times at each latency; the best time of each is kept (the machine may be
shared). The experiment orchestrator commits each row to SQLite as it finishes, before that worker
takes another row, so the ratio shows what "never lose a row" costs. ``--backend postgres`` keeps the
store in a real PostgreSQL server on a loopback port instead (``store.url``, a new database each run;
``elspeth-store-postgres`` installed), where each turn's commit is a round trip to the server.

Each latency's line ends with its throughput ratio, store on over store off, and PASS or FAIL against
``--target`` (0.95); the command exits 1 if any latency fails, so it can gate a change. A smoke run
(``--rows 200 --repeats 1``) checks that the benchmark works; its ratio means little.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from elspeth_testing.llm_server import LLMTestServer, ServerConfig
from elspeth_testing.services import postgres_server

_THROUGHPUT = Path(__file__).parents[1] / "throughput" / "bench.py"
_spec = importlib.util.spec_from_file_location("throughput_bench", _THROUGHPUT)
assert _spec is not None
assert _spec.loader is not None
throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(throughput)


Store = Callable[[str], dict[str, object]]  # a run's name -> its `store:` settings with the store on


@contextmanager
def backend(name: str) -> Iterator[Store]:
    """The `store:` settings of the chosen backend: a new SQLite file, or a new database on a PostgreSQL server."""
    if name == "sqlite":
        yield lambda run: {"path": f"store-{run}.sqlite"}
        return
    with postgres_server() as pg:
        yield lambda run: {"url": pg.create_database(f"bench_{run}")}


def timed_run(
    root: Path, rows: int, server: LLMTestServer, concurrency: int, *, store: Store | None, name: str
) -> float:
    """Seconds one run takes, with the run store on (``store``: the backend's settings) or off."""
    retry = {"max_attempts": 4, "timeout_s": 60}
    settings = throughput.write_project(root, rows, server.openai_base_url, "aiohttp", concurrency, retry)
    data = json.loads(settings.read_text())
    data["store"] = store(name) if store is not None else {"enabled": False}
    settings.write_text(json.dumps(data))
    server.reset()
    elapsed, result = asyncio.run(throughput.elspeth_run(settings))
    assert result.metadata.succeeded == rows, result.metadata
    return float(elapsed)


def main() -> int:
    """Run the benchmark, print one line per latency, and return the exit code (1 if any ratio misses the target)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows per run")
    parser.add_argument("--concurrency", type=int, default=64, help="rows in flight")
    parser.add_argument("--latency-ms", default="0,50", help="server latencies to measure, comma-separated")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each kind per latency; the best counts")
    parser.add_argument("--target", type=float, default=0.95, help="lowest acceptable ratio of store on to off")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite", help="where the store is")
    args = parser.parse_args()
    os.environ[throughput.KEY_ENV] = "bench-key"
    print(
        f"{args.rows} rows, concurrency {args.concurrency}, best of {args.repeats}; store: {args.backend}; "
        "LLM server in a child process"
    )
    print(
        f"{'latency':>7} | {'store on s':>10} {'rows/s':>7} | {'store off s':>11} {'rows/s':>7} | {'on/off':>6} |"
        f" target {args.target:.2f}"
    )
    failed: list[str] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LLMTestServer(ServerConfig(), process=True) as server,
        backend(args.backend) as store,
    ):
        # untimed: the first run in a process pays for imports and connection set-up, which is not the store's
        timed_run(Path(tmp) / "warm-up", min(args.rows, 200), server, args.concurrency, store=None, name="warm")
        for latency in (float(x) for x in args.latency_ms.split(",")):
            server.configure(latency_ms=latency)
            times: dict[bool, list[float]] = {True: [], False: []}
            for repeat in range(args.repeats):
                for enabled in (True, False):
                    root = Path(tmp) / f"{latency}-{enabled}"
                    on = store if enabled else None
                    name = f"{latency:g}_{repeat}".replace(".", "_")
                    elapsed = timed_run(root, args.rows, server, args.concurrency, store=on, name=name)
                    times[enabled].append(elapsed)
            on, off = min(times[True]), min(times[False])
            ratio = off / on  # throughput with the store over throughput without it
            verdict = "PASS" if ratio >= args.target else "FAIL"
            if verdict == "FAIL":
                failed.append(f"{latency:g} ms ({ratio:.3f})")
            print(
                f"{latency:>5.0f}ms | {on:10.2f} {args.rows / on:7.0f} | {off:11.2f} {args.rows / off:7.0f}"
                f" | {ratio:6.3f} | {verdict}"
            )
    if failed:
        print(f"FAIL: store on/off below {args.target} at {', '.join(failed)}")
        return 1
    print(f"PASS: store on/off at least {args.target} at every latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
