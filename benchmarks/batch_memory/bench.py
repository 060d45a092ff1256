"""Peak memory of the batch orchestrator: a 1,000,000-row run against a 100,000-row run.

    python benchmarks/batch_memory/bench.py [--small 100000] [--large 1000000] [--concurrency 32]
                                            [--no-store] [--resume]

Both CSVs are generated in a temporary folder. Each run is ``python -m elspeth run settings.yaml`` in a
child process (csv datasource, the ``mock`` client, the ``batch`` orchestrator, ``csv`` and ``jsonl``
sinks), and its peak resident set size is read from ``os.wait4`` (the kernel's ``ru_maxrss`` of that
child alone). A streaming orchestrator and streaming sinks keep the peak flat: the target is a ratio
(large / small) of at most 1.5, and the command exits with status 1 when the ratio is above it (``--target``
changes it). Rows per second of each run are printed too (wall time of the child, start-up included).

With ``--resume`` each run is then resumed (``elspeth run settings.yaml --resume RUN_ID``): every row is
taken over from the run store instead of being sent again, and the sinks are written anew. The resumed
runs' peaks must keep the same ratio: a resume reads the earlier rows from the store as it needs them.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from elspeth_testing.measure import run_measured

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


def run(folder: Path, data: str, concurrency: int, store: bool, resume: str | None = None) -> tuple[float, float, str]:
    """Peak RSS in MiB, wall seconds and the summary line of one ``elspeth run`` in a child process."""
    path = folder / f"settings-{Path(data).stem}.yaml"
    path.write_text(settings(data, concurrency, store), encoding="utf-8")
    command = ["run", str(path), "--no-progress", *(["--resume", resume] if resume else [])]
    done = run_measured(command, folder)
    if done.returncode != 0:
        sys.exit(f"elspeth run failed ({done.returncode}):\n{done.output}")
    return done.peak_mib, done.wall_s, done.output.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-store", action="store_true", help="turn the run store off (store: {enabled: false})")
    parser.add_argument("--target", type=float, default=TARGET, help=f"largest ratio that passes (default {TARGET})")
    parser.add_argument("--resume", action="store_true", help="resume each run, every row taken over from the store")
    args = parser.parse_args()
    if args.resume and args.no_store:
        parser.error("--resume needs the run store")
    kinds = ["run", "resume"] if args.resume else ["run"]
    with tempfile.TemporaryDirectory(prefix="elspeth-batch-memory-") as tmp:
        folder = Path(tmp)
        figures: dict[tuple[str, int], float] = {}
        for rows in (args.small, args.large):
            name = f"rows-{rows}.csv"
            write_csv(folder / name, rows)
            run_id = None
            for kind in kinds:
                peak, wall, line = run(folder, name, args.concurrency, not args.no_store, run_id)
                run_id = line.split()[1]  # "run <id> (<name>) completed ..."
                figures[kind, rows] = peak
                print(
                    f"{rows:>9,} rows, {kind:<6}: peak RSS {peak:7.1f} MiB, {wall:6.1f} s, {rows / wall:8,.0f} rows/s"
                    f"  | {line}"
                )
                written = sum(1 for _ in (folder / f"out-rows-{rows}" / "results.jsonl").open(encoding="utf-8"))
                assert written == rows, f"results.jsonl has {written} lines, expected {rows}"
        failed = False
        for kind in kinds:
            ratio = figures[kind, args.large] / figures[kind, args.small]
            verdict = "ok" if ratio <= args.target else "ABOVE TARGET"
            failed = failed or ratio > args.target
            print(
                f"peak RSS ratio ({kind}) {args.large:,} / {args.small:,} rows: {ratio:.2f}"
                f" (target <= {args.target}: {verdict})"
            )
        if failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
