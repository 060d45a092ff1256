"""Messages/s, arrival-to-result latency and peak memory of the streaming orchestrator through Redis Streams.

    python benchmarks/streaming/bench.py [--messages 10000] [--concurrency 64] [--full]

A real redis-server (``elspeth_testing.services.ensure_program``) runs on a free loopback port. Each
run is ``python -m elspeth run settings.yaml`` in a child process: the ``redis_stream`` datasource
(a consumer group) and sink, the ``streaming`` orchestrator, the run store on, concurrency 64.

- **throughput**: ``--messages`` entries are added first, then consumed; messages/s is the count over
  the span from the first result's ``XADD`` to the last's (Redis entry ids carry their millisecond).
  Once with the ``mock`` client, once with the ``openai`` client against the LLM test server
  (``elspeth_testing.llm_server``, its own process) answering after 50 ms; the ideal there is
  concurrency / 50 ms = 1,280 messages/s.
- **latency**: once the consumer has joined its group, a producer adds entries at half the rate just
  measured (``--latency-seconds`` long) while the consumer runs; a message's latency is from its
  arrival (its entry's ``XADD`` time) to its result's ``XADD``, p50 and p99.
- **memory**: peak RSS (``os.wait4``) of the mock run over 100,000 and 1,000,000 messages with ``--full``
  (10,000 and 100,000 by default); the target is a ratio of at most 1.5.

Targets: mock at least 1,000 messages/s; the 50 ms run at least 0.5 of its ideal; latency p99 at most
500 ms over the call's own time; the memory ratio. The command exits with status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from elspeth_testing.llm_server import LLMTestServer, ServerConfig
from elspeth_testing.measure import run_measured
from elspeth_testing.services import ensure_program, free_port, wait_for_port

KEY_ENV = "ELSPETH_BENCH_KEY"
TARGETS = {"mock_per_s": 1000.0, "llm_share_of_ideal": 0.5, "p99_over_call_ms": 500.0, "memory_ratio": 1.5}
CALL_MS = 50.0


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    program = ensure_program("redis-server", "redis-server")
    port = free_port()
    command = [program, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""]
    command += ["--appendonly", "no", "--protected-mode", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process=process)
    return process, port


def settings(url: str, llm: dict[str, Any], concurrency: int, tag: str, idle_s: float) -> str:
    source = {"url": url, "stream": f"in-{tag}", "group": "bench", "fields": ["text"], "count": 500}
    source |= {"block_ms": 200, "end_when_idle_s": idle_s}
    doc = {
        "name": f"stream-bench-{tag}",
        "datasource": {"plugin": "redis_stream", "options": source},
        "llm": llm,
        "prompts": {"user": "Is this ticket urgent? {{ text }}"},
        "concurrency": concurrency,
        "orchestrator": {"plugin": "streaming", "options": {"emit_batch": 256}},
        "sinks": [{"plugin": "redis_stream", "options": {"url": url, "stream": f"out-{tag}", "maxlen": 20000}}],
        "output_dir": f"out-{tag}",
    }
    return json.dumps(doc, indent=2)  # JSON is YAML


def add(client: Any, stream: str, start: int, n: int) -> None:
    for base in range(start, start + n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(base, min(base + 1000, start + n)):
            pipe.xadd(stream, {"data": json.dumps({"text": f"ticket {i}: the kettle leaks, please help"})})
        pipe.execute()


def run(folder: Path, text: str, tag: str) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of one ``elspeth run`` of these settings in a child process."""
    path = folder / f"settings-{tag}.yaml"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_") or k == KEY_ENV}
    done = run_measured(["run", str(path), "--no-progress"], folder, env)
    if done.returncode != 0:
        sys.exit(f"elspeth run ({tag}) failed:\n{done.output}")
    return done.peak_mib, done.wall_s


def results(client: Any, tag: str) -> list[tuple[int, int]]:
    """(arrival ms, result ms) of each result the run added (the newest 20,000: the sink's maxlen)."""
    pairs = []
    for entry_id, fields in client.xrange(f"out-{tag}"):
        pairs.append((int(fields["row_id"].split("-")[0]), int(entry_id.split("-")[0])))
    return pairs


def throughput(client: Any, folder: Path, url: str, llm: dict[str, Any], args: Any, tag: str) -> float:
    add(client, f"in-{tag}", 0, args.messages)
    _, wall = run(folder, settings(url, llm, args.concurrency, tag, idle_s=1.0), tag)
    done = client.hlen(f"out-{tag}:ids")
    assert done == args.messages, f"{tag}: {done} results for {args.messages} messages"
    pairs = results(client, tag)
    span_s = max(1e-3, (max(r for _, r in pairs) - min(r for _, r in pairs)) / 1000)
    seen = len(pairs)  # the span of the newest results (the stream is trimmed to 20,000)
    rate = seen / span_s
    print(f"{tag:>10}: {args.messages:,} messages, {rate:8,.0f} messages/s (child wall {wall:.1f} s, idle end 1 s)")
    return rate


def latency(client: Any, folder: Path, url: str, llm: dict[str, Any], args: Any, tag: str, rate: float) -> float:
    """The p99 latency (ms) of messages added at ``rate``/s while the consumer runs; prints p50 and p99."""
    n = max(1000, int(rate * args.latency_seconds))
    stream = f"in-{tag}"
    client.xgroup_create(stream, "bench", id="0", mkstream=True)

    def produce() -> None:
        while not client.xinfo_consumers(stream, "bench"):  # the consumer's start-up is not a message's wait
            time.sleep(0.05)
        started = time.perf_counter()
        for k in range(0, n, 50):  # 50 at a time, paced
            add(client, stream, k, min(50, n - k))
            wait = started + (k + 50) / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    run(folder, settings(url, llm, args.concurrency, tag, idle_s=2.0), tag)
    producer.join()
    waits = sorted(r - a for a, r in results(client, tag))
    p50, p99 = waits[len(waits) // 2], waits[min(len(waits) - 1, int(0.99 * len(waits)))]
    print(f"{tag:>10}: {n:,} messages at {rate:,.0f}/s: latency arrival->result p50 {p50} ms, p99 {p99} ms")
    return float(p99)


def memory(client: Any, folder: Path, url: str, args: Any) -> float:
    sizes = (100_000, 1_000_000) if args.full else (10_000, 100_000)
    peaks = []
    for n in sizes:
        tag = f"mem-{n}"
        add(client, f"in-{tag}", 0, n)
        peak, wall = run(folder, settings(url, {"plugin": "mock"}, args.concurrency, tag, idle_s=1.0), tag)
        assert client.hlen(f"out-{tag}:ids") == n
        client.delete(f"in-{tag}", f"out-{tag}", f"out-{tag}:ids")
        shutil.rmtree(folder / f"out-{tag}", ignore_errors=True)
        peaks.append(peak)
        print(f"{tag:>10}: {n:>9,} messages: peak RSS {peak:6.1f} MiB, {wall:6.1f} s, {n / wall:7,.0f} messages/s")
    ratio = peaks[1] / peaks[0]
    print(f"peak RSS ratio {sizes[1]:,} / {sizes[0]:,} messages: {ratio:.2f}")
    return ratio


def verdict(name: str, value: float, target: float, *, most: bool = False) -> bool:
    met = value <= target if most else value >= target
    print(f"  {name}: {value:,.2f} (target {'<=' if most else '>='} {target:,}): {'met' if met else 'MISSED'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages per throughput run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-seconds", type=float, default=5.0, help="how long the producer adds messages")
    parser.add_argument("--full", action="store_true", help="memory at 100,000 and 1,000,000 messages")
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    with tempfile.TemporaryDirectory(prefix="elspeth-stream-bench-") as tmp:
        folder = Path(tmp)
        process, port = start_redis(folder)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            with LLMTestServer(ServerConfig(api_key="bench-key", latency_ms=CALL_MS), process=True) as server:
                openai: dict[str, Any] = {
                    "model": "bench-model",
                    "base_url": server.openai_base_url,
                    "api_key_env": KEY_ENV,
                }
                openai |= {"max_connections": max(64, args.concurrency), "timeout": 30}
                llm_server = {"plugin": "openai", "options": openai}
                mock = {"plugin": "mock"}
                mock_rate = throughput(client, folder, url, mock, args, "mock")
                llm_rate = throughput(client, folder, url, llm_server, args, "llm-50ms")
                mock_p99 = latency(client, folder, url, mock, args, "mock-lat", mock_rate / 2)
                llm_p99 = latency(client, folder, url, llm_server, args, "llm-lat", llm_rate / 2)
            ratio = memory(client, folder, url, args)
        finally:
            process.terminate()
            process.wait(timeout=30)
    ideal = args.concurrency / (CALL_MS / 1000)
    print("targets:")
    met = [
        verdict("mock messages/s", mock_rate, TARGETS["mock_per_s"]),
        verdict("50 ms run, share of its ideal", llm_rate / ideal, TARGETS["llm_share_of_ideal"]),
        verdict("mock p99 ms", mock_p99, TARGETS["p99_over_call_ms"], most=True),
        verdict("50 ms run p99 ms over the call", llm_p99 - CALL_MS, TARGETS["p99_over_call_ms"], most=True),
        verdict("peak RSS ratio", ratio, TARGETS["memory_ratio"], most=True),
    ]
    sys.exit(0 if all(met) else 1)


if __name__ == "__main__":
    main()
