"""The ``adaptive`` rate limiter: its cost on a server that never says 429, and the capacity it finds on one that does.

    python benchmarks/adaptive/bench.py [--rows 2000] [--concurrency 64] [--repeats 2] [--capacity 200]

The LLM test server runs in a child process on 127.0.0.1 (as in benchmarks/throughput, whose
project writer this reuses). First, at 50 ms and no faults, the same real run with ``adaptive`` on its
defaults and with no limiter, alternately, best of ``--repeats``: target ``adaptive/none`` >= 0.9.
Then the server enforces ``--capacity`` N calls a second with 429s: the run's successes a second
from 1.5 s on must be within 10% of N, and 429s under 5% of requests. Exit status 1 below a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "throughput"))
from bench import KEY_ENV, elspeth_run, write_project

from elspeth_testing.llm_server import LLMTestServer, ServerConfig


def project(root: Path, args: argparse.Namespace, base_url: str, limiter: dict[str, Any] | None) -> Path:
    retry = {"max_attempts": 8, "initial_delay_s": 0.01, "max_delay_s": 0.2, "timeout_s": 30}
    path = write_project(root, args.rows, base_url, "aiohttp", args.concurrency, retry)
    settings = json.loads(path.read_text("utf-8"))
    if limiter is not None:
        settings["rate_limiter"] = limiter
    path.write_text(json.dumps(settings), "utf-8")
    return path


def cost_of_adaptive(server: LLMTestServer, args: argparse.Namespace, work: Path) -> bool:
    server.configure(latency_ms=50, max_rps=None)
    runs: dict[str, list[float]] = {"none": [], "adaptive": []}
    for _ in range(args.repeats):
        for name, limiter in (("none", None), ("adaptive", {"plugin": "adaptive"})):
            server.reset()
            elapsed, result = asyncio.run(elspeth_run(project(work / name, args, server.openai_base_url, limiter)))
            assert result.metadata.succeeded == args.rows, result.metadata
            runs[name].append(elapsed)
    none, adaptive = min(runs["none"]), min(runs["adaptive"])
    ratio = none / adaptive
    print(f"no 429s, 50 ms, {args.rows} rows, concurrency {args.concurrency}, best of {args.repeats}:")
    print(f"  no limiter {none:.2f} s, adaptive {adaptive:.2f} s, adaptive/none speed {ratio:.2f} (target >= 0.9)")
    return ratio >= 0.9


def capacity(server: LLMTestServer, args: argparse.Namespace, work: Path) -> bool:
    n = args.capacity
    server.configure(latency_ms=50, max_rps=n)
    server.reset()
    settings = project(work / "capacity", args, server.openai_base_url, {"plugin": "adaptive"})
    elapsed, result = asyncio.run(elspeth_run(settings))
    chat = server.requests("chat/completions")
    ok = sorted(r.t for r in chat if r.outcome == "ok")
    limited = sum(1 for r in chat if r.outcome == "429")
    settled = [t for t in ok if t >= ok[0] + 1.5]
    rate = (len(settled) - 1) / (settled[-1] - settled[0])
    [lane] = result.metadata.extra["rate_limiter"]["adaptive"].values()
    print(f"server enforcing {n} calls/s with 429s: run {elapsed:.2f} s, {len(chat)} requests")
    print(f"  successes/s from 1.5 s on {rate:.1f} ({rate / n:.2f} of N; target 0.9-1.1)")
    print(f"  429s {limited} = {limited / len(chat):.1%} of requests (target < 5%); cuts {lane['cuts']}")
    print(f"  limiter: rate {lane['rps']} calls/s, ceiling {lane['ceiling_rps']}, {len(lane['history'])} changes")
    return 0.9 * n <= rate <= 1.1 * n and limited / len(chat) < 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=200, help="N calls/s the server enforces")
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    with tempfile.TemporaryDirectory() as tmp, LLMTestServer(ServerConfig(api_key="bench-key"), process=True) as server:
        fast = cost_of_adaptive(server, args, Path(tmp))
        found = capacity(server, args, Path(tmp))
    if not (fast and found):
        sys.exit("below target")


if __name__ == "__main__":
    main()
