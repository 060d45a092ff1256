"""Startup cost of the CLI: `elspeth plugins list` against `python -c pass`.

Run:  python benchmarks/startup/bench.py [--runs 15]

Each command runs once to warm the OS file cache and the bytecode cache, then --runs times; the
medians, minimums and ratios are printed. Bytecode is cached in a temporary folder
(``PYTHONPYCACHEPREFIX``) even where ``PYTHONDONTWRITEBYTECODE`` is set, because an installed
package always has its ``.pyc`` files: without them every run compiles every module from source and
measures the compiler (about 1.5 s more here), not Elspeth. The figure that matters is the absolute
median (what a user waits for) and the ratio, which removes the machine's speed from the comparison;
on a busy machine the minimum and the CPU time (user + system) say more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of ``runs`` runs of ``cmd``, after one warm-up run."""
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    walls, cpus = [], []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed")
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="elspeth-bench-pyc-")
    script = shutil.which("elspeth", path=os.path.dirname(sys.executable)) or shutil.which("elspeth")
    elspeth = [script] if script else [sys.executable, "-m", "elspeth"]
    baseline, _ = _time([sys.executable, "-c", "pass"], args.runs, env)
    base = statistics.median(baseline)
    print(f"runs: {args.runs} each, python {sys.version.split()[0]}, bytecode cached (see the docstring)")
    print(f"python -c pass          median {base * 1000:7.1f} ms  (min {min(baseline) * 1000:.1f} ms)")
    for label, cmd in (("elspeth plugins list", ["plugins", "list"]), ("elspeth --help", ["--help"])):
        walls, cpus = _time([*elspeth, *cmd], args.runs, env)
        med = statistics.median(walls)
        print(
            f"{label:<23} median {med * 1000:7.1f} ms  ratio {med / base:5.1f}x  (min {min(walls) * 1000:.1f} ms, "
            f"cpu min {min(cpus) * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
