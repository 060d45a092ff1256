"""The streaming orchestrator run in-process: results emitted as they finish, malformed lines, bounds, rotation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, RunFailed, RunResult
from elspeth.config import load_settings
from elspeth.engine import execute, prepare
from elspeth.registry import Registry
from elspeth.resume import RunOptions
from elspeth_testing.plugin import WriteSettings


def settings(source: dict[str, Any] | None = None, sinks: list[Any] | None = None, **top: Any) -> str:
    doc: dict[str, Any] = {
        "name": "stream-test",
        "datasource": source or {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"]}},
        "llm": {"plugin": "mock", "options": {}},
        "prompts": {"user": "classify: {{ text }}"},
        "concurrency": 4,
        "orchestrator": {"plugin": "streaming", "options": {}},
        "sinks": sinks or [{"plugin": "jsonl_stream", "options": {"directory": "stream"}}],
        "store": {"enabled": False},
    }
    doc.update(top)
    return json.dumps(doc, indent=2)


def lines(n: int, bad: dict[int, str] | None = None) -> str:
    out = [json.dumps({"text": f"message {i}"}) for i in range(1, n + 1)]
    for number, text in (bad or {}).items():
        out[number - 1] = text
    return "\n".join(out) + "\n"


def go(path: Path, registry: Registry, **options: Any) -> RunResult:
    async def main() -> RunResult:
        prepared = await prepare(load_settings(path), registry, options=RunOptions(**options))
        return await execute(prepared)

    return asyncio.run(main())


def test_each_message_is_emitted_once_keyed_by_its_line(
    write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path
) -> None:
    path = write_settings(settings(), {"in.jsonl": lines(50)})
    result = go(path, registry)
    out = results(tmp_path / "output/stream")
    assert sorted(int(r["row_id"]) for r in out) == list(range(1, 51))
    first = next(r for r in out if r["row_id"] == "7")
    assert first["status"] == "ok"
    assert first["inputs"] == {"text": "message 7"}
    assert first["outputs"]["response"], "the LLM's reply is the result's output"
    assert result.metadata.succeeded == 50
    assert result.metadata.outcome.status == "completed"
    assert result.aggregates["messages"] == 50
    assert result.aggregates["emitted"] == 50
    assert result.records == [], "results went to the streaming sinks, not into memory"


def test_a_malformed_line_is_a_failure_with_its_line_number_and_the_stream_goes_on(
    write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path
) -> None:
    data = lines(6, {2: "{not json", 4: "[1, 2]"})
    result = go(write_settings(settings(), {"in.jsonl": data}), registry)
    out = {r["row_id"]: r for r in results(tmp_path / "output/stream")}
    assert set(out) == {"1", "line 2", "3", "line 4", "5", "6"}
    assert out["line 2"]["status"] == "failed"
    assert out["line 2"]["stage"] == "source"
    assert out["line 2"]["error"].startswith("line 2: not JSON")
    assert out["line 2"]["outputs"] == {"raw": "{not json"}
    assert out["line 4"]["error"] == "line 4: a JSON list, not an object"
    assert result.metadata.succeeded == 4
    assert result.metadata.failed == 2
    assert result.aggregates["malformed"] == 2


def test_a_missing_id_field_is_a_failure_and_ids_come_from_the_field(
    write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path
) -> None:
    source = {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"], "id_field": "key"}}
    data = '{"key": "a1", "text": "x"}\n{"text": "no key"}\n{"key": "b2", "text": "y"}\n'
    go(write_settings(settings(source), {"in.jsonl": data}), registry)
    out = {r["row_id"]: r for r in results(tmp_path / "output/stream")}
    assert set(out) == {"a1", "line 2", "b2"}
    assert out["line 2"]["error"] == "line 2: no id in field 'key' (id_field)"


def test_files_rotate_by_size(write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path) -> None:
    sink = {"plugin": "jsonl_stream", "options": {"rotate_bytes": 2000}}
    text = settings(sinks=[sink], orchestrator={"plugin": "streaming", "options": {"emit_batch": 4}})
    result = go(write_settings(text, {"in.jsonl": lines(100)}), registry)
    files = sorted((tmp_path / "output/stream").glob("results-*.jsonl"))
    assert len(files) > 3, "a file is closed once it holds rotate_bytes and the next one begins"
    assert all(f.stat().st_size < 2000 + 256 * 400 for f in files)
    assert len(results(tmp_path / "output/stream")) == 100
    listed = [str(a.path) for a in result.metadata.artifacts or []]
    assert listed == [str(f) for f in files], "every file is listed as an artifact of the run"


def test_files_rotate_by_time(write_settings: WriteSettings, registry: Registry, results: Any, tmp_path: Path) -> None:
    source = {"plugin": "jsonl_stream", "options": {"path": "in.jsonl", "fields": ["text"]}}
    sink = {"plugin": "jsonl_stream", "options": {"rotate_seconds": 0.05, "rotate_bytes": None}}
    text = settings(source, [sink], llm={"plugin": "mock", "options": {"latency_ms": 20}}, concurrency=1)
    go(write_settings(text, {"in.jsonl": lines(12)}), registry)
    files = sorted((tmp_path / "output/stream").glob("results-*.jsonl"))
    assert len(files) >= 2, "a file older than rotate_seconds is closed at the next emit"
    assert len(results(tmp_path / "output/stream")) == 12


def test_max_messages_reads_and_emits_exactly_that_many(
    write_settings: WriteSettings, registry: Registry, seen: Any
) -> None:
    READ, EMITTED = seen
    text = settings(
        {"plugin": "endless"},
        [{"plugin": "slow", "options": {"delay_ms": 20}}],
        orchestrator={"plugin": "streaming", "options": {"emit_batch": 8, "emit_queue": 16}},
    )
    result = go(write_settings(text), registry, max_messages=200)
    assert len(EMITTED) == 200
    assert result.metadata.succeeded == 200
    assert len(READ) == 200, "no message is read past the limit (it would be lost to this run)"
    assert result.aggregates["emits"] >= 200 // 8


def test_a_slow_sink_holds_back_the_source_while_the_run_goes_on(
    write_settings: WriteSettings, registry: Registry, seen: Any
) -> None:
    READ, EMITTED = seen
    text = settings(
        {"plugin": "endless"},
        [{"plugin": "slow", "options": {"delay_ms": 50}}],
        orchestrator={"plugin": "streaming", "options": {"emit_batch": 4, "emit_queue": 8}},
    )
    result = go(write_settings(text), registry, max_seconds=0.6)
    # 0.6 s at 4 results per 50 ms is about 48 emitted; read at most the queue, a batch, the workers and the
    # read-ahead (concurrency) more
    assert 0 < len(EMITTED) <= 60
    assert len(READ) - len(EMITTED) <= 8 + 4 + 4 + 4 + 1  # the queue, a batch, the workers, the read-ahead
    assert result.metadata.outcome.status == "stopped"
    assert "--max-seconds" in (result.metadata.outcome.reason or "")


def test_settings_without_a_streaming_sink_name_the_sinks_line(
    write_settings: WriteSettings, registry: Registry
) -> None:
    path = write_settings(settings(sinks=[{"plugin": "csv", "options": {"path": "x.csv"}}]), {"in.jsonl": lines(1)})
    with pytest.raises(ConfigError, match=r"sinks: .*sinks that stream.*these sinks do not: csv \(settings.yaml:\d+\)"):
        go(path, registry)


def test_prompts_without_an_llm_and_an_unknown_field_are_refused(
    write_settings: WriteSettings, registry: Registry
) -> None:
    text = json.loads(settings(prompts={"user": "{{ txet }}"}))
    del text["llm"]
    with pytest.raises(ConfigError) as caught:
        go(write_settings(json.dumps(text, indent=2), {"in.jsonl": lines(1)}), registry)
    message = str(caught.value)
    assert "set `llm` too" in message
    assert "txet" in message
    assert "prompts.user" in message


def test_a_missing_input_file_is_a_settings_error(write_settings: WriteSettings, registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"datasource 'jsonl_stream' cannot read its input: file not found"):
        go(write_settings(settings()), registry)


def test_a_failing_sink_stops_the_run_naming_it_without_hanging_the_workers(
    write_settings: WriteSettings, registry: Registry, seen: Any
) -> None:
    _, EMITTED = seen
    text = settings(
        {"plugin": "endless"},
        [{"plugin": "slow", "options": {"fail_after": 20, "delay_ms": 5}}],
        orchestrator={"plugin": "streaming", "options": {"emit_batch": 4, "emit_queue": 4}},
    )
    with pytest.raises(
        RunFailed, match=r"streaming sink 'slow' failed to emit \d+ result\(s\): OSError: the disk went away"
    ):
        go(write_settings(text), registry)
    assert 20 <= len(EMITTED) < 30, "the run stopped at the sink's first failure"
