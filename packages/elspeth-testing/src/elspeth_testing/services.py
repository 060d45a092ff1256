"""Real programs the tests need (redis-server, PostgreSQL, Chromium): found, or installed, on loopback.

A test that needs a real service calls :func:`ensure_program` for its binary. On a machine without
it, and running as root (CI machines are), the Debian package is installed with ``apt-get``; one
install at a time machine-wide, so parallel test sessions do not fight over dpkg's lock. A program
that cannot be found or installed raises :class:`ServiceUnavailable`, a failure and never a skip:
CI must not pass by leaving out what it was asked to test.

:func:`free_port` hands out a free TCP port on 127.0.0.1, and :func:`wait_for_port` waits until a
started server listens there. :func:`postgres_server` runs a throwaway PostgreSQL server from a
temporary data folder; :func:`dask_cluster` a ``LocalCluster`` of worker processes (which needs
``distributed`` installed). Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PostgresServer",
    "ServiceUnavailable",
    "dask_cluster",
    "ensure_program",
    "free_port",
    "postgres_server",
    "wait_for_port",
]

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


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server started by :func:`postgres_server`: superuser ``user``, no password, on 127.0.0.1."""

    port: int
    user: str
    bin_dir: Path
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        """The ``postgresql://`` URL of ``database`` on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` (with the server's own ``createdb``) and return its URL."""
        command = [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceUnavailable(f"createdb {name} failed ({result.returncode}): {result.stderr.strip()}")
        return self.url(name)


def _as_owner(folder: Path) -> list[str]:
    """The prefix that runs a server program as the owner of ``folder``: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable("running as root, and there is no `postgres` user to run the server as") from None
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    return [ensure_program("runuser", "util-linux"), "-u", "postgres", "--"]


@contextmanager
def postgres_server(*, user: str = "elspeth", timeout: float = 60.0) -> Iterator[PostgresServer]:
    """Start PostgreSQL from a new temporary data folder on a free loopback port; stop it and delete the folder after.

    The server trusts connections from 127.0.0.1 (no password) and runs with ``fsync=off``: it is made
    for tests, which kill clients, never the machine. As root, the server runs as the ``postgres`` user
    (``runuser``), which owns the folder. Debian's ``postgresql`` package is installed when missing.

    Raises:
        ServiceUnavailable: the programs are missing and cannot be installed, or the server did not start.
    """
    bin_dir = Path(ensure_program("initdb", "postgresql")).resolve().parent  # beside createdb, pg_ctl
    folder = Path(tempfile.mkdtemp(prefix="elspeth-pg-"))
    data, log = folder / "data", folder / "server.log"
    try:
        prefix = _as_owner(folder)
        init = [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"]
        result = subprocess.run([*prefix, *init], capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed ({result.returncode}): {result.stderr.strip()[-400:]}")
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {folder} -F -c max_connections=200"
        start = [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", str(int(timeout))]
        result = subprocess.run([*prefix, *start, "-o", options], capture_output=True, text=True)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-600:] if log.exists() else result.stderr
            raise ServiceUnavailable(f"PostgreSQL did not start on 127.0.0.1:{port}: {tail.strip()}")
        try:
            wait_for_port(port, timeout=timeout)
            yield PostgresServer(port=port, user=user, bin_dir=bin_dir, data_dir=data)
        finally:
            stop = [str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"]
            subprocess.run([*prefix, *stop], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def dask_cluster(*, n_workers: int = 2, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of a ``LocalCluster`` of single-threaded worker processes on 127.0.0.1.

    ``env`` is put into this process's environment before the workers start, so they find it in
    theirs, as a real cluster's workers find their credentials; it is removed again afterwards.
    """
    from distributed import Client, LocalCluster

    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    local: Any = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    client: Any = Client(local)  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()
        local.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
