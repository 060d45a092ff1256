"""Real programs the tests need (redis-server, PostgreSQL, Chromium): found, or installed, on loopback.

A test that needs a real service calls :func:`ensure_program` for its binary. On a machine without
it, and running as root (CI machines are), the Debian package is installed with ``apt-get``; one
install at a time machine-wide, so parallel test sessions do not fight over dpkg's lock. A program
that cannot be found or installed raises :class:`ServiceUnavailable`, a failure and never a skip:
CI must not pass by leaving out what it was asked to test.

:func:`free_port` hands out a free TCP port on 127.0.0.1, and :func:`wait_for_port` waits until a
started server listens there. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["ServiceUnavailable", "ensure_program", "free_port", "wait_for_port"]

_APT_LOCK = Path("/tmp/elspeth-testing-apt.lock")
# Debian puts PostgreSQL's server programs outside PATH.
_EXTRA_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/sbin")


class ServiceUnavailable(RuntimeError):
    """A program a test needs is not on this machine and could not be installed."""


def _find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for pattern in _EXTRA_DIRS:
        for folder in sorted(glob.glob(pattern), reverse=True):
            candidate = Path(folder) / program
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def ensure_program(program: str, package: str) -> str:
    """The path of ``program``, installing the Debian ``package`` first when it is missing."""
    found = _find(program)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceUnavailable(
            f"{program!r} is not installed and this is not a root Debian machine: "
            f"install it with `apt-get install {package}`"
        )
    with _APT_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _find(program)  # another session may have installed it while we waited
        if found:
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            result = subprocess.run(install, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise ServiceUnavailable(
                    f"`apt-get install {package}` failed ({result.returncode}): {result.stderr[-400:]}"
                )
    found = _find(program)
    if not found:
        raise ServiceUnavailable(f"the Debian package {package!r} installed no {program!r}")
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the moment of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"the server meant for port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")
