"""Running the ``elspeth`` command in a subprocess, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CliResult", "run_cli"]


@dataclass(frozen=True)
class CliResult:
    """What a CLI run gave back.

    Attributes:
        returncode: the exit code (0 success, 1 run failed, 2 bad input).
        stdout: standard output, as text.
        stderr: standard error, as text.

    """

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run ``python -m elspeth ARGS`` in ``cwd``.

    Every ``ELSPETH_*`` variable of the calling process is removed first, so a developer's own
    settings never change a test's outcome; ``env`` adds variables back.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    clean.update(env or {})
    clean.setdefault("PYTHONIOENCODING", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "elspeth", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
