"""Peak memory of the batch orchestrator: a 1,000,000-row run against a 100,000-row run.

    python benchmarks/batch_memory/bench.py [--small 100000] [--large 1000000] [--concurrency 32] [--no-store]

Both CSVs are generated in a temporary folder. Each run is ``python -m elspeth run settings.yaml`` in a
child process (csv datasource, the ``mock`` client, the ``batch`` orchestrator, ``csv`` and ``jsonl``
sinks), and its peak resident set size is read from ``os.wait4`` (the kernel's ``ru_maxrss`` of that
child alone). A streaming orchestrator and streaming sinks keep the peak flat: the target is a ratio
(large / small) of at most 1.5, and the command exits with status 1 when the ratio is above it (``--target``
changes it). Rows per second of each run are printed too (wall time of the child, start-up included).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5
PRODUCTS = ["kettle", "toaster", "blender", "lamp", "desk", "chair", "router", "headphones"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product", "review"])
        for i in range(rows):
            review = f"Review {i}: does what it says, arrived on time, {i % 97} stars"
            writer.writerow([PRODUCTS[i % len(PRODUCTS)], review])


def settings(data: str, concurrency: int, store: bool) -> str:
    doc = {
        "name": "batch-memory",
        "datasource": {"plugin": "csv", "options": {"path": data}},
        "llm": {"plugin": "mock", "options": {"json_reply": True}},
        "prompts": {"system": "Rate the review.", "user": "{{ product }}: {{ review }}"},
        "concurrency": concurrency,
        "orchestrator": {"plugin": "batch", "options": {"json_fields": {"score": "score"}, "include_raw": True}},
        "sinks": [
            {"plugin": "csv", "options": {"path": "results.csv", "failures_path": "failures.csv"}},
            {"plugin": "jsonl", "options": {"path": "results.jsonl"}},
        ],
        "output_dir": f"out-{Path(data).stem}",
    }
    if not store:
        doc["store"] = {"enabled": False}
    return json.dumps(doc, indent=2)  # JSON is YAML


def run(folder: Path, data: str, concurrency: int, store: bool) -> tuple[float, float, str]:
    """Peak RSS in MiB, wall seconds and the summary line of one ``elspeth run`` in a child process."""
    path = folder / f"settings-{Path(data).stem}.yaml"
    path.write_text(settings(data, concurrency, store), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "elspeth", "run", str(path), "--no-progress"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"elspeth run failed ({child.returncode}):\n{output}")
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return peak, wall, output.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-store", action="store_true", help="turn the run store off (store: {enabled: false})")
    parser.add_argument("--target", type=float, default=TARGET, help=f"largest ratio that passes (default {TARGET})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elspeth-batch-memory-") as tmp:
        folder = Path(tmp)
        figures = {}
        for rows in (args.small, args.large):
            name = f"rows-{rows}.csv"
            write_csv(folder / name, rows)
            peak, wall, line = run(folder, name, args.concurrency, not args.no_store)
            figures[rows] = peak
            print(f"{rows:>9,} rows: peak RSS {peak:7.1f} MiB, {wall:6.1f} s, {rows / wall:8,.0f} rows/s  | {line}")
            written = sum(1 for _ in (folder / f"out-rows-{rows}" / "results.jsonl").open(encoding="utf-8"))
            assert written == rows, f"results.jsonl has {written} lines, expected {rows}"
        ratio = figures[args.large] / figures[args.small]
        verdict = "ok" if ratio <= args.target else "ABOVE TARGET"
        print(f"peak RSS ratio {args.large:,} / {args.small:,} rows: {ratio:.2f} (target <= {args.target}: {verdict})")
        if ratio > args.target:
            sys.exit(1)


if __name__ == "__main__":
    main()
