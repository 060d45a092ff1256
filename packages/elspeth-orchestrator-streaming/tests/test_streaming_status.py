"""The progress display's live line: messages/s, lag where the source can say (else absent, not 0), in flight,
failures and cost, from real runs; and on stderr from ``elspeth run --progress``."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from elspeth import RunResult
from elspeth.config import load_settings
from elspeth.engine import execute, prepare
from elspeth.registry import Registry
from elspeth.resume import RunOptions
from elspeth_testing.plugin import ElspethCli, WriteSettings
from elspeth_testing.progress import RecordingProgress

PRICES = {"plugin": "price_table", "options": {"prices": {"mock-1": {"input": 1.0, "output": 2.0}}}}


def settings(source: dict[str, Any], sinks: list[Any], latency: float = 5) -> str:
    doc = {
        "name": "stream-status",
        "datasource": source,
        "llm": {"plugin": "mock", "options": {"latency_ms": latency}},
        "cost_tracker": PRICES,
        "prompts": {"user": "classify: {{ text }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "streaming", "options": {"progress_seconds": 0.05}},
        "sinks": sinks,
        "store": {"enabled": False},
    }
    return json.dumps(doc, indent=2)


def go(path: Path, registry: Registry, progress: RecordingProgress, **options: Any) -> RunResult:
    async def main() -> RunResult:
        loaded = load_settings(path)
        return await execute(await prepare(loaded, registry, progress=progress, options=RunOptions(**options)))

    return asyncio.run(main())


def lines(n: int) -> str:
    out = [json.dumps({"text": f"message {i} " + "x" * 200}) for i in range(1, n + 1)]
    out[9] = "{not json"
    return "\n".join(out) + "\n"


FIGURES = re.compile(
    r"^(?P<messages>\d+) messages, (?P<rate>[\d.]+) msg/s(, lag (?P<lag>\d+) (?P<unit>\w+))?, "
    r"(?P<in_flight>\d+) in flight, (?P<failed>\d+) failed(, cost (?P<cost>[\d.e-]+))?$"
)


def parsed(text: str) -> dict[str, str | None]:
    match = FIGURES.match(text)
    assert match is not None, text
    return match.groupdict()


def test_a_file_reports_its_unread_bytes_and_the_line_ends_with_the_totals(
    write_settings: WriteSettings, registry: Registry
) -> None:
    source = {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"]}}
    sinks = [{"plugin": "jsonl_stream", "options": {}}]
    path = write_settings(settings(source, sinks), {"in.jsonl": lines(400)})
    progress = RecordingProgress()
    go(path, registry, progress)
    figures = [parsed(text) for text in progress.lines]
    assert len(figures) >= 3, "the line is redrawn every progress_seconds"
    assert all(f["unit"] == "bytes" for f in figures)
    assert any(int(f["lag"] or 0) > 0 for f in figures[:-1]), "while reading, the file's unread bytes"
    last = figures[-1]
    assert last["lag"] == "0", "all of it read"
    assert last["messages"] == "400"
    assert last["in_flight"] == "0"
    assert last["failed"] == "1", "the malformed line"
    assert float(last["cost"] or 0) > 0, "the run's cost from the price table"
    assert any(float(f["rate"] or 0) > 0 for f in figures)
    assert any(int(f["in_flight"] or 0) > 0 for f in figures[:-1]), "messages in flight while the calls wait"


def test_a_source_that_cannot_say_its_lag_shows_none(
    write_settings: WriteSettings, registry: Registry, seen: Any
) -> None:
    sinks = [{"plugin": "slow", "options": {}}]
    progress = RecordingProgress()
    go(write_settings(settings({"plugin": "endless"}, sinks)), registry, progress, max_seconds=0.5)
    assert progress.lines
    assert all(" lag " not in text for text in progress.lines), "absent, not 0"
    assert all(parsed(text)["lag"] is None for text in progress.lines)


def test_elspeth_run_with_progress_draws_the_line_on_stderr(tmp_path: Path, elspeth_cli: ElspethCli) -> None:
    source = {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"]}}
    (tmp_path / "settings.yaml").write_text(settings(source, [{"plugin": "jsonl_stream"}]), encoding="utf-8")
    (tmp_path / "in.jsonl").write_text(lines(100), encoding="utf-8")
    done = elspeth_cli("run", "settings.yaml", "--progress", cwd=tmp_path, env={"COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert re.search(r"100 messages, [\d.]+ msg/s, lag 0 bytes, 0 in flight, 1 failed, cost [\d.e-]+", done.stderr)
