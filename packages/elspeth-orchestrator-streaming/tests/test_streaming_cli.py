"""``elspeth run`` of streaming settings in a real subprocess: kill -9 and restart, signals, limits, standard input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from elspeth_testing.plugin import ElspethCli

SETTINGS = """\
name: stream-cli
datasource:
  plugin: jsonl_stream
  options: {{path: {path}, fields: [text], follow: {follow}}}
llm:
  plugin: mock
  options: {{latency_ms: {latency}}}
prompts:
  user: "classify: {{{{ text }}}}"
concurrency: 8
orchestrator:
  plugin: streaming
  options: {{emit_batch: 16}}
sinks:
  - plugin: jsonl_stream
    options: {{directory: stream, rotate_bytes: 20000}}
"""


def write(tmp_path: Path, *, path: str = "in.jsonl", follow: bool = False, latency: float = 2, n: int = 0) -> Path:
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS.format(path=path, follow=str(follow).lower(), latency=latency), encoding="utf-8")
    if n:
        text = "".join(json.dumps({"text": f"message {i}"}) + "\n" for i in range(1, n + 1))
        (tmp_path / path).write_text(text, encoding="utf-8")
    return settings


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    return clean | {"PYTHONIOENCODING": "utf-8"}


def start(tmp_path: Path, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "elspeth", "run", "settings.yaml", "--no-progress", *args]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env(), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def emitted_ids(tmp_path: Path) -> list[str]:
    """The message id of every complete line the sink wrote (a last line a kill cut short is not one)."""
    ids = []
    for path in sorted((tmp_path / "output/stream").glob("results-*.jsonl")):
        for line in path.read_bytes().split(b"\n"):
            try:
                ids.append(json.loads(line)["row_id"])
            except ValueError:
                continue
    return ids


def wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def only_run_id(tmp_path: Path, cli: ElspethCli) -> str:
    listed = cli("runs", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 1
    return str(runs[0]["run_id"])


def test_kill_9_mid_stream_then_restart_loses_nothing_and_emits_nothing_twice(
    tmp_path: Path, elspeth_cli: ElspethCli
) -> None:
    total = 3000
    write(tmp_path, n=total)
    proc = start(tmp_path)
    wait_for(lambda: len(emitted_ids(tmp_path)) >= 600)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps it and closes its pipes
    before = emitted_ids(tmp_path)
    assert 600 <= len(before) < total, "killed mid-stream"
    assert len(set(before)) == len(before)
    run_id = only_run_id(tmp_path, elspeth_cli)
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", run_id, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ids = emitted_ids(tmp_path)
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert twice == [], f"emitted twice: {twice[:10]}"
    assert sorted(map(int, ids)) == list(range(1, total + 1)), "every message reached the sink"
    summary = json.loads(elspeth_cli("runs", "show", run_id, "--json", cwd=tmp_path).stdout)
    resumed = summary["metadata"]["resumed_rows"]
    # the restart ran again only what the kill left uncommitted: at most the 8 messages in flight
    assert resumed >= len(before)
    assert summary["metadata"]["succeeded"] == total


def test_sigterm_drains_and_exits_0_with_a_summary_then_a_restart_continues(
    tmp_path: Path, elspeth_cli: ElspethCli
) -> None:
    write(tmp_path, follow=True, n=40)
    proc = start(tmp_path)
    wait_for(lambda: len(emitted_ids(tmp_path)) >= 40)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM: finishing the calls in flight" in err
    assert "streaming: 40 messages (0 malformed), 40 results emitted" in out
    assert "resume with: elspeth run settings.yaml --resume" in out
    with (tmp_path / "in.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps({"text": f"later {i}"}) + "\n" for i in range(5)))
    run_id = only_run_id(tmp_path, elspeth_cli)
    again = elspeth_cli(
        "run", "settings.yaml", "--no-progress", "--resume", run_id, "--max-messages", "45", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    ids = emitted_ids(tmp_path)
    assert sorted(map(int, ids)) == list(range(1, 46)), "the 40 are not emitted again; the 5 new lines are"


def test_a_second_signal_quits_at_once_and_the_run_stays_resumable(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    write(tmp_path, latency=2000, n=20)
    proc = start(tmp_path)
    wait_for(lambda: (tmp_path / "output/elspeth-runs.sqlite").exists())
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "quitting now; resume with: elspeth run settings.yaml --resume" in err
    run_id = only_run_id(tmp_path, elspeth_cli)
    fast = (tmp_path / "settings.yaml").read_text(encoding="utf-8").replace("latency_ms: 2000", "latency_ms: 1")
    (tmp_path / "settings.yaml").write_text(fast, encoding="utf-8")
    again = elspeth_cli("run", "settings.yaml", "--no-progress", "--resume", run_id, "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(map(int, emitted_ids(tmp_path))) == list(range(1, 21))


def test_standard_input_to_its_end_with_a_malformed_line(tmp_path: Path) -> None:
    write(tmp_path, path="'-'")
    proc = start(tmp_path, stdin=subprocess.PIPE)
    lines = [json.dumps({"text": f"m{i}"}) for i in range(1, 6)]
    lines[2] = "{broken"
    out, err = proc.communicate("\n".join(lines) + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "streaming: 5 messages (1 malformed), 5 results emitted" in out
    failed = [json.loads(line) for line in (tmp_path / "output/stream/results-000001.jsonl").read_text().splitlines()]
    bad = [r for r in failed if r["status"] == "failed"]
    assert [(r["row_id"], r["stage"]) for r in bad] == [("line 3", "source")]


def test_max_seconds_ends_a_followed_file(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    write(tmp_path, follow=True, n=3)
    began = time.monotonic()
    done = elspeth_cli("run", "settings.yaml", "--no-progress", "--max-seconds", "1.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < 20
    assert "time limit reached (--max-seconds 1.5)" in done.stdout
    assert sorted(emitted_ids(tmp_path)) == ["1", "2", "3"]
