"""Throughput with the run store on against off, in one run.

    python benchmarks/store/bench.py [--rows 2000] [--concurrency 64] [--latency-ms 0,50] [--repeats 3]

The same settings (csv datasource, the ``experiment`` orchestrator, the ``openai`` client against the
LLM test server in a child process, a ``jsonl`` sink) run with ``store.enabled`` true and false,
alternately, ``--repeats`` times at each latency; the best time of each is kept (the machine may be
shared). Every finished row is committed to SQLite before its slot takes another row, so the ratio
shows what "never lose a row" costs. Target: on/off at least 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import tempfile
from pathlib import Path

from elspeth_testing.llm_server import LLMTestServer, ServerConfig

_THROUGHPUT = Path(__file__).parents[1] / "throughput" / "bench.py"
_spec = importlib.util.spec_from_file_location("throughput_bench", _THROUGHPUT)
assert _spec is not None
assert _spec.loader is not None
throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(throughput)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ[throughput.KEY_ENV] = "bench-key"
    print(f"{args.rows} rows, concurrency {args.concurrency}, best of {args.repeats}; server in a child process")
    print(f"{'latency':>7} | {'store on s':>10} {'rows/s':>7} | {'store off s':>11} {'rows/s':>7} | {'on/off':>6}")
    with tempfile.TemporaryDirectory() as tmp, LLMTestServer(ServerConfig(), process=True) as server:
        for latency in (float(x) for x in args.latency_ms.split(",")):
            server.configure(latency_ms=latency)
            retry = {"max_attempts": 4, "timeout_s": 60}
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.repeats):
                for enabled in (True, False):
                    root = Path(tmp) / f"{latency}-{enabled}"
                    settings = throughput.write_project(
                        root, args.rows, server.openai_base_url, "aiohttp", args.concurrency, retry
                    )
                    data = json.loads(settings.read_text())
                    data["store"] = {"enabled": enabled, "path": f"store-{len(times[enabled])}.sqlite"}
                    settings.write_text(json.dumps(data))
                    server.reset()
                    elapsed, result = asyncio.run(throughput.elspeth_run(settings))
                    assert result.metadata.succeeded == args.rows, result.metadata
                    times[enabled].append(elapsed)
            on, off = min(times[True]), min(times[False])
            print(
                f"{latency:>5.0f}ms | {on:10.2f} {args.rows / on:7.0f} | {off:11.2f} {args.rows / off:7.0f}"
                f" | {off / on:6.2f}"
            )


if __name__ == "__main__":
    main()
