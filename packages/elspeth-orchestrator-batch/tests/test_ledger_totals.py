"""A batch run resumed after its sink failed counts the LLM calls of its first attempt (the ledger's, per row)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from elspeth import RunFailed
from elspeth.config import load_settings
from elspeth.discovery import load_registry
from elspeth.engine import execute, prepare
from elspeth.resume import RunOptions

SETTINGS = """
name: sink-fails
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: mock, options: {seed: 3}}
prompts: {user: "Summarise {{ text }}"}
concurrency: 8
orchestrator: {plugin: batch}
sinks:
  - {plugin: csv, options: {path: blocked/results.csv}}
  - {plugin: json}
"""


def run(path: Path, **options: Any) -> Any:
    async def go() -> Any:
        prepared = await prepare(load_settings(path), load_registry(), options=RunOptions(**options))
        return prepared.context.run_id, await execute(prepared)

    return asyncio.run(go())


def test_a_batch_run_resumed_after_its_sink_failed_reports_every_llm_call(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i},text {i}\n" for i in range(30)))
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS)
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "blocked").write_text("a file where the sink wants a folder")
    with pytest.raises(RunFailed, match=r"sinks\[0\] \(csv\) failed"):
        run(path)
    (tmp_path / "output" / "blocked").unlink()
    from elspeth.store import RunStore

    store = RunStore.open(tmp_path / "output" / "elspeth-runs.sqlite", create=False)
    try:
        (failed,) = store.runs()
        assert failed["status"] == "failed"
        assert failed["totals"]["llm_calls"] == 30  # the failed attempt's calls are in the store, with its rows
    finally:
        store.close()
    _, result = run(path, resume=failed["run_id"])
    meta = result.metadata.to_dict()
    assert meta["resumed_rows"] == 30
    assert meta["llm_calls"] == 30, "every row was sent once, in the first attempt"
    assert meta["totals"]["llm_calls"] == 30
    summary = json.loads((tmp_path / "output" / "summary.json").read_text(encoding="utf-8"))
    assert summary["metadata"]["llm_calls"] == summary["metadata"]["totals"]["llm_calls"] == 30
    assert summary["aggregates"]["tokens"] == meta["tokens"]
    assert meta["tokens"]["total"] == meta["totals"]["prompt_tokens"] + meta["totals"]["completion_tokens"] > 0
