"""Windows: count and time windows' running aggregates as records of kind ``window``, partial at the end, per-window
aggregators, bad window settings, and no window emitted twice after kill -9 and a resume."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import statistics
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

PRICES = {"plugin": "price_table", "options": {"prices": {"mock-1": {"input": 1.0, "output": 2.0}}}}


def settings(windows: list[dict[str, Any]], *, source: dict[str, Any] | None = None, **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "stream-windows",
        "datasource": source or {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"]}},
        "llm": {"plugin": "mock", "options": {}},
        "cost_tracker": PRICES,
        "prompts": {"user": "classify: {{ text }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "streaming", "options": {"emit_batch": 4, "windows": windows}},
        "sinks": [{"plugin": "jsonl_stream", "options": {"directory": "stream"}}],
        "store": {"enabled": False},
    }
    doc.update(top)
    return json.dumps(doc, indent=2)


def lines(n: int, bad: tuple[int, ...] = ()) -> str:
    out = [json.dumps({"text": f"message {i}"}) for i in range(1, n + 1)]
    for number in bad:
        out[number - 1] = "{not json"
    return "\n".join(out) + "\n"


def go(path: Path, registry: Registry, **options: Any) -> RunResult:
    async def main() -> RunResult:
        return await execute(await prepare(load_settings(path), registry, options=RunOptions(**options)))

    return asyncio.run(main())


def split(out: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(results, windows) of the lines a jsonl_stream sink wrote."""
    return [r for r in out if r["kind"] == "result"], [r for r in out if r["kind"] == "window"]


def test_count_windows_sum_up_every_n_messages_and_the_rest_is_partial(
    write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="elspeth_streaming.windows")
    windows = [{"every": 10, "score_field": "score", "aggregators": ["latency_summary", "cost_summary"]}]
    path = write_settings(settings(windows), {"in.jsonl": lines(25, bad=(7,))})
    result = go(path, registry)
    done, window_lines = split(results(tmp_path / "output/stream"))
    assert len(done) == 25
    assert [w["row_id"] for w in window_lines] == ["window:every-10:1", "window:every-10:2", "window:every-10:3"]
    figures = [w["outputs"] for w in window_lines]
    assert [f["messages"] for f in figures] == [10, 10, 5]
    assert [f["partial"] for f in figures] == [False, False, True], "the window open at the end is partial"
    assert sum(f["failures"] for f in figures) == 1, "the malformed line counts as a failure in its window"
    scores = {r["row_id"]: r["metrics"]["score"] for r in done if r["status"] == "ok"}
    scored = sum(f["scored"] for f in figures)
    assert scored == 24
    weighted = sum(f["score_mean"] * f["scored"] for f in figures) / scored
    assert weighted == pytest.approx(statistics.fmean(scores.values()))
    costs = sum(r["metrics"]["cost"] for r in done if r["status"] == "ok")
    assert sum(f["cost"] for f in figures) == pytest.approx(costs), "each message's cost counted in one window"
    first = figures[0]
    assert first["kind"] == "window"
    assert first["window"] == "every-10"
    assert first["every"] == 10
    assert 0 <= first["latency_p50_ms"] <= first["latency_p95_ms"] <= first["latency_p99_ms"]
    assert first["aggregates"]["latency_summary"]["count"] == 10 - first["failures"]
    assert first["aggregates"]["cost_summary"]["cost"]["total"] == pytest.approx(first["cost"])
    assert first["start"].endswith("Z")
    assert first["start"] <= first["end"]
    assert result.aggregates["windows"] == 3
    logged = [r.getMessage() for r in caplog.records if r.name == "elspeth_streaming.windows"]
    assert logged[0].startswith("window every-10 #1: 10 messages, ")
    assert "mean score" in logged[0]
    assert "latency p50" in logged[0]
    assert logged[2].startswith("window every-10 #3 (partial): 5 messages")


def test_time_windows_count_each_message_once_by_arrival(
    write_settings: WriteSettings, registry: Registry, seen: Any
) -> None:
    _, emitted = seen
    text = settings(
        [{"seconds": 0.25}, {"name": "per-40", "every": 40}],
        source={"plugin": "endless"},
        llm={"plugin": "mock", "options": {"latency_ms": 30}},
        sinks=[{"plugin": "slow", "options": {}}],
    )
    result = go(write_settings(text), registry, max_seconds=1.3)
    windows = [i for i in emitted if i.group == "window"]
    timed = [w.outputs for w in windows if w.outputs["window"] == "0.25s"]
    counted = [w.outputs for w in windows if w.outputs["window"] == "per-40"]
    messages = [i for i in emitted if i.group != "window"]
    assert len(timed) >= 4, "a window every quarter second over 1.3 s"
    assert [w["seq"] for w in timed] == list(range(1, len(timed) + 1))
    assert sum(w["messages"] for w in timed) == len(messages), "every message in exactly one time window"
    assert sum(w["messages"] for w in counted) == len(messages)
    assert all(w["messages"] == 40 for w in counted[:-1])
    assert [w["partial"] for w in timed[:-1]] == [False] * (len(timed) - 1)
    assert timed[-1]["seconds"] == 0.25
    # 4 workers, 30 ms a call: about 33 messages a quarter second
    assert all(w["messages"] <= 60 for w in timed if not w["partial"])
    assert result.aggregates["windows"] == len(windows)


def test_windows_go_to_a_sink_of_their_own(
    write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path
) -> None:
    sinks = [
        {"plugin": "jsonl_stream", "options": {"directory": "results", "windows": False}},
        {"plugin": "jsonl_stream", "options": {"directory": "windows", "results": False}},
    ]
    go(write_settings(settings([{"every": 5}], sinks=sinks), {"in.jsonl": lines(12)}), registry)
    assert {r["kind"] for r in results(tmp_path / "output/results")} == {"result"}
    only = results(tmp_path / "output/windows")
    assert [(w["kind"], w["outputs"]["messages"]) for w in only] == [("window", 5), ("window", 5), ("window", 2)]


@pytest.mark.parametrize(
    ("window", "where", "says"),
    [
        ({"every": 10, "seconds": 5}, "windows[0].every", "exactly one of them"),
        ({}, "windows[0]", "a window needs `every: N` messages or `seconds: S`"),
        ({"every": 0}, "windows[0].every", "greater than or equal to 1"),
        ({"seconds": -1}, "windows[0].seconds", "greater than 0"),
        ({"every": 5, "evry": 3}, "windows[0].evry", "unknown key"),
        ({"every": 5, "aggregators": ["no_such"]}, "windows[0].aggregators[0].plugin", "no_such"),
        ({"every": 5, "aggregators": ["whole_only"]}, "windows[0].aggregators[0]", "cannot sum up a window"),
    ],
)
def test_bad_window_settings_are_refused_naming_the_field(
    window: dict[str, Any], where: str, says: str, write_settings: WriteSettings, registry: Registry
) -> None:
    path = write_settings(settings([window]), {"in.jsonl": lines(1)})
    with pytest.raises(ConfigError) as caught:
        go(path, registry)
    message = str(caught.value)
    assert f"orchestrator.options.{where}" in message
    assert says in message
    assert "settings.yaml:" in message, "the line of the settings file is named"


def test_two_windows_of_one_name_are_refused(write_settings: WriteSettings, registry: Registry) -> None:
    path = write_settings(settings([{"every": 5}, {"every": 5}]), {"in.jsonl": lines(1)})
    with pytest.raises(
        ConfigError, match=r"orchestrator\.options\.windows\[1\]\.name.*two windows are named 'every-5'"
    ):
        go(path, registry)


def test_a_bad_window_is_exit_2_from_the_cli(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    (tmp_path / "settings.yaml").write_text(settings([{"every": 10, "seconds": 60}]), encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(lines(3), encoding="utf-8")
    done = elspeth_cli("run", "settings.yaml", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert "orchestrator.options.windows[0].every" in done.stderr


def _window_ids(folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_bytes().split(b"\n"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc["kind"] == "window":
                ids.append(doc["row_id"])
    return ids


def test_kill_9_then_resume_never_emits_a_window_twice(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    text = settings(
        [{"every": 50}],
        llm={"plugin": "mock", "options": {"latency_ms": 2}},
        store={"enabled": True},
        concurrency=8,
    )
    (tmp_path / "settings.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(lines(3000), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    command = [sys.executable, "-m", "elspeth", "run", "settings.yaml", "--no-progress"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = tmp_path / "output/stream"
    deadline = time.monotonic() + 60
    while len(_window_ids(folder)) < 8:
        assert time.monotonic() < deadline, "the run never got going"
        assert proc.poll() is None, "the run ended before it was killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    before = _window_ids(folder)
    assert len(before) < 60, "killed mid-stream"
    runs = json.loads(elspeth_cli("runs", "list", "--json", cwd=tmp_path).stdout)
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", runs[0]["run_id"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ids = _window_ids(folder)
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "no window reached the sink twice"
    seqs = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert seqs == list(range(1, len(seqs) + 1)), "the resumed run numbers its windows on from the last emitted"
    assert len(ids) > len(before)
