"""The service helpers: finding programs, free ports, and waiting for a listener."""

import socket
import subprocess
import sys

import pytest

from elspeth_testing.services import ServiceUnavailable, ensure_program, free_port, wait_for_port


def test_ensure_program_finds_what_is_on_path() -> None:
    assert ensure_program("sh", "dash").endswith("/sh")


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_port_returns_once_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        wait_for_port(sock.getsockname()[1], timeout=2)


def test_wait_for_port_gives_up_with_the_port_named() -> None:
    with pytest.raises(ServiceUnavailable, match=str(port := free_port())):
        wait_for_port(port, timeout=0.3)


def test_wait_for_port_notices_the_server_died() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(ServiceUnavailable, match="exited with 3"):
        wait_for_port(free_port(), timeout=5, process=process)  # type: ignore[arg-type]
