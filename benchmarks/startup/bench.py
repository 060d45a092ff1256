"""Startup cost of the CLI: `elspeth plugins list` against `python -c pass`.

Run:  python benchmarks/startup/bench.py [--runs 15]

Each command runs once to warm the OS file cache, then --runs times; the medians and their ratio
are printed. The figure that matters is the absolute median (what a user waits for) and the ratio,
which removes the machine's speed from the comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    script = shutil.which("elspeth", path=os.path.dirname(sys.executable)) or shutil.which("elspeth")
    elspeth = [script] if script else [sys.executable, "-m", "elspeth"]
    baseline = _time([sys.executable, "-c", "pass"], args.runs, env)
    listing = _time([*elspeth, "plugins", "list"], args.runs, env)
    help_ = _time([*elspeth, "--help"], args.runs, env)
    base = statistics.median(baseline)
    print(f"runs: {args.runs} each, python {sys.version.split()[0]}")
    print(f"python -c pass          median {base * 1000:7.1f} ms")
    for label, times in (("elspeth plugins list", listing), ("elspeth --help", help_)):
        med = statistics.median(times)
        print(f"{label:<23} median {med * 1000:7.1f} ms  ratio {med / base:5.1f}x  (min {min(times) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
