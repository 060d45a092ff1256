"""Running ``elspeth`` in a child process and measuring it, for the benchmarks: its peak memory and wall time.

The peak resident set size is the kernel's ``ru_maxrss`` of that child alone (``os.wait4``), so the
benchmark's own memory and that of servers it started are not counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]


@dataclass(frozen=True)
class Measured:
    """One child process: its exit status, what it printed (stdout and stderr), its peak RSS in MiB, its wall time."""

    returncode: int
    output: str
    peak_mib: float
    wall_s: float


def run_measured(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``python -m elspeth ARGS`` in ``cwd`` and measure it.

    Args:
        args: the CLI's arguments, e.g. ``["run", "settings.yaml", "--no-progress"]``.
        cwd: the child's working folder.
        env: the child's environment (default: this one without ``ELSPETH_*`` variables).

    Example::

        done = run_measured(["run", "settings.yaml", "--no-progress"], folder)
        print(f"peak RSS {done.peak_mib:.1f} MiB in {done.wall_s:.1f} s")

    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "elspeth", *args],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Measured(os.waitstatus_to_exitcode(status), output, peak, wall)
