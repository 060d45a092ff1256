"""A real redis-server on a free loopback port (installed by apt-get when missing), and a registry."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from elspeth import PluginSource
from elspeth.registry import Registry
from elspeth_testing import build_registry
from elspeth_testing.services import ensure_program, free_port, wait_for_port

REDIS = PluginSource("redis_stream", "elspeth-stream-redis", "0.1.0", "elspeth_stream_redis.plugin")
STREAMING = PluginSource("streaming", "elspeth-orchestrator-streaming", "0.1.0", "elspeth_streaming.plugin")


@dataclass
class RedisServer:
    """A redis-server this test started; ``stop()`` then ``start()`` brings it back on the same port and data."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        program = ensure_program("redis-server", "redis-server")
        command = [program, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def kill(self) -> None:
        """``kill -9``: the server gets no chance to save; what it had appended (``appendfsync always``) survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def client(self) -> object:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh redis-server with its own data folder (the append-only file survives a restart)."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry() -> Registry:
    """Core's builtins, the streaming orchestrator and the Redis plugins."""
    return build_registry(STREAMING, REDIS)
