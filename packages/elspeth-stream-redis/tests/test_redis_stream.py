"""redis_stream source and sink on a real redis-server: consumer groups, ack after commit, kill -9, a lost server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, RunResult
from elspeth.config import load_settings
from elspeth.engine import execute, prepare
from elspeth.registry import Registry
from elspeth.resume import RunOptions
from elspeth_testing.plugin import ElspethCli, WriteSettings
from elspeth_testing.progress import RecordingProgress


def settings(url: str, *, latency: float = 0, idle: float | None = 1.0, store: bool = False) -> str:
    source: dict[str, Any] = {"url": url, "stream": "tickets", "fields": ["text"], "block_ms": 100}
    if idle is not None:
        source["end_when_idle_s"] = idle
    doc = {
        "name": "redis-stream",
        "datasource": {"plugin": "redis_stream", "options": source},
        "llm": {"plugin": "mock", "options": {"latency_ms": latency}},
        "prompts": {"user": "classify: {{ text }}"},
        "concurrency": 8,
        "orchestrator": {"plugin": "streaming", "options": {"emit_batch": 16}},
        "sinks": [{"plugin": "redis_stream", "options": {"url": url, "stream": "screened"}}],
        "store": {"enabled": store},
    }
    return json.dumps(doc, indent=2)


def add(client: Any, n: int, start: int = 1) -> list[str]:
    return [client.xadd("tickets", {"data": json.dumps({"text": f"ticket {i}"})}) for i in range(start, start + n)]


def results(client: Any) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange("screened")]


def go(path: Path, registry: Registry, **options: Any) -> RunResult:
    async def main() -> RunResult:
        return await execute(await prepare(load_settings(path), registry, options=RunOptions(**options)))

    return asyncio.run(main())


def test_messages_flow_through_and_each_is_acknowledged_after_its_result(
    redis_server: Any, write_settings: WriteSettings, registry: Registry
) -> None:
    client = redis_server.client()
    ids = add(client, 30)
    client.xadd("tickets", {"data": "{broken"})
    client.xadd("tickets", {"other": "x"})
    result = go(write_settings(settings(redis_server.url)), registry)
    out = results(client)
    assert sorted(r["row_id"] for r in out if r["status"] == "ok") == sorted(ids)
    failed = {r["row_id"]: json.loads(r["result"]) for r in out if r["status"] == "failed"}
    assert len(failed) == 2
    reasons = sorted(f["error"] for f in failed.values())
    assert "field 'data' is not JSON" in reasons[0]
    assert "no field 'data' (data_field)" in reasons[1]
    assert json.loads(out[0]["result"])["outputs"]["response"], "the LLM's reply is in the result"
    assert client.xpending("tickets", "elspeth")["pending"] == 0, "every message was acknowledged"
    assert client.hlen("screened:ids") == 32
    assert result.metadata.succeeded == 30
    assert result.metadata.failed == 2


def test_an_unreachable_server_at_start_is_a_settings_error_naming_the_setting(
    write_settings: WriteSettings, registry: Registry
) -> None:
    from elspeth_testing.services import free_port

    path = write_settings(settings(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(ConfigError, match=r"datasource\.options\.url: cannot reach the Redis server"):
        go(path, registry)


def test_an_unreachable_server_is_exit_2(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    from elspeth_testing.services import free_port

    (tmp_path / "settings.yaml").write_text(settings(f"redis://127.0.0.1:{free_port()}/0"), encoding="utf-8")
    done = elspeth_cli("run", "settings.yaml", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert "datasource.options.url: cannot reach the Redis server" in done.stderr


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_server_lost_mid_stream_is_retried_and_nothing_is_lost(
    how: str, redis_server: Any, write_settings: WriteSettings, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    ids = add(client, 200)
    path = write_settings(settings(redis_server.url, latency=50, idle=2.0))

    async def main() -> RunResult:
        prepared = await prepare(load_settings(path), registry, options=RunOptions())
        run = asyncio.ensure_future(execute(prepared))
        while len(client.xrange("screened")) < 40:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(getattr(redis_server, how))  # SIGTERM, or SIGKILL (kill -9)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis_server.start)  # the same port and append-only file
        return await run

    result = asyncio.run(main())
    client = redis_server.client()
    out = [r["row_id"] for r in results(client) if r["kind"] == "result"]
    assert sorted(set(out)) == sorted(ids), "every message reached the sink after the server came back"
    assert client.xpending("tickets", "elspeth")["pending"] == 0, "and was acknowledged"
    assert [i for i, n in Counter(out).items() if n > 1] == []
    assert result.metadata.succeeded == 200
    retried = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert retried, "the lost server was retried with backoff"


def test_kill_9_of_a_consumer_mid_stream_then_restart_emits_each_message_once(
    redis_server: Any, tmp_path: Path, elspeth_cli: ElspethCli
) -> None:
    client = redis_server.client()
    ids = add(client, 1500)
    (tmp_path / "settings.yaml").write_text(settings(redis_server.url, latency=2, store=True), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    command = [sys.executable, "-m", "elspeth", "run", "settings.yaml", "--no-progress"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while client.xlen("screened") < 300:
        assert time.monotonic() < deadline, "the consumer never got going"
        assert proc.poll() is None, "the consumer ended before it was killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    before = client.xlen("screened")
    assert before < 1500, "killed mid-stream"
    assert client.xpending("tickets", "elspeth")["pending"] > 0, "messages delivered and not acknowledged at the kill"
    runs = json.loads(elspeth_cli("runs", "list", "--json", cwd=tmp_path).stdout)
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", runs[0]["run_id"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    out = [r["row_id"] for r in results(client)]
    assert [i for i, n in Counter(out).items() if n > 1] == [], "no message reached the sink twice"
    assert sorted(out) == sorted(ids), "no message was lost"
    assert client.xpending("tickets", "elspeth")["pending"] == 0


def test_a_time_limit_stops_a_quiet_consumer_after_acknowledging_what_it_did(
    redis_server: Any, write_settings: WriteSettings, registry: Registry
) -> None:
    client = redis_server.client()
    ids = add(client, 20)
    result = go(write_settings(settings(redis_server.url, idle=None)), registry, max_seconds=1.5)
    assert result.metadata.outcome.status == "stopped"
    assert sorted(r["row_id"] for r in results(client)) == sorted(ids)
    assert client.xpending("tickets", "elspeth")["pending"] == 0, "acknowledged after the blocked read was stopped"
    later = add(client, 3, start=21)
    again = go(write_settings(settings(redis_server.url, idle=0.5)), registry, max_messages=3)
    assert again.metadata.succeeded == 3
    assert sorted(r["row_id"] for r in results(client)) == sorted(ids + later)


def test_the_progress_line_shows_the_groups_lag_from_the_server(
    redis_server: Any, write_settings: WriteSettings, registry: Registry
) -> None:
    client = redis_server.client()
    add(client, 300)
    doc = json.loads(settings(redis_server.url, latency=20, idle=0.5))
    doc["orchestrator"]["options"]["progress_seconds"] = 0.05
    doc["datasource"]["options"]["count"] = 10
    path = write_settings(json.dumps(doc, indent=2))
    progress = RecordingProgress()

    async def main() -> RunResult:
        return await execute(await prepare(load_settings(path), registry, progress=progress, options=RunOptions()))

    asyncio.run(main())
    lags = [int(m.group(1)) for text in progress.lines if (m := re.search(r"lag (\d+) messages", text))]
    assert len(lags) >= 3, progress.lines
    assert max(lags) > 100, "early on, most of the stream is not yet delivered to the group (XINFO GROUPS lag)"
    assert lags[-1] == 0, "all of it delivered at the end"
    assert lags == sorted(lags, reverse=True), "the lag only falls while nothing is added"


def test_an_unreachable_sink_server_is_exit_2_naming_the_sink(
    redis_server: Any, tmp_path: Path, elspeth_cli: ElspethCli
) -> None:
    from elspeth_testing.services import free_port

    add(redis_server.client(), 3)
    doc = json.loads(settings(redis_server.url))
    doc["sinks"][0]["options"]["url"] = f"redis://127.0.0.1:{free_port()}/0"
    (tmp_path / "settings.yaml").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    done = elspeth_cli("run", "settings.yaml", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "sink 'redis_stream'.options.url: cannot reach the Redis server" in done.stderr
    assert redis_server.client().xpending("tickets", "elspeth")["pending"] == 0, "nothing read, nothing left pending"
