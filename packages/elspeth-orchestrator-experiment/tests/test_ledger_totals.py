"""A resumed suite's totals come from the spending ledger: every LLM call of every attempt, no cost tracker."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from elspeth import Cancel, LLMRequest, LLMResponse, Usage, hookimpl
from elspeth.config import load_settings
from elspeth.discovery import PluginSource, load_registry
from elspeth.engine import execute, prepare
from elspeth.resume import RunOptions
from elspeth.store import RunStore


class InterruptingClient:
    """Answers every prompt; at call ``stop_at`` it stops the run as Ctrl-C does."""

    name = "interrupting"
    calls = 0
    stop_at: int | None = None
    cancel: ClassVar[list[Cancel]] = []

    class Options(BaseModel):
        pass

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        InterruptingClient.calls += 1
        if InterruptingClient.calls == InterruptingClient.stop_at:
            InterruptingClient.cancel[0].set("interrupted by Ctrl-C")
        return LLMResponse(content="Score: 0.5", usage=Usage(3, 2), model="m")


def _plugins() -> types.ModuleType:
    module = types.ModuleType("ledger_test_plugins")

    @hookimpl
    def register_llm_clients(register: Any) -> None:
        register(InterruptingClient)

    module.register_llm_clients = register_llm_clients  # type: ignore[attr-defined]
    return module


SETTINGS = """
name: suite
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: interrupting}
prompts: {user: "Rate {{ text }}"}
concurrency: 64
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
    experiments: [{name: a, baseline: true}, {name: b}]
sinks: [{plugin: jsonl}]
"""


def run(path: Path, registry: Any, **options: Any) -> Any:
    async def go() -> Any:
        prepared = await prepare(load_settings(path), registry, options=RunOptions(**options))
        InterruptingClient.cancel[:] = [prepared.context.cancel]
        return prepared.context.run_id, await execute(prepared)

    return asyncio.run(go())


@pytest.mark.slow
def test_a_resumed_6000_row_suite_without_a_cost_tracker_counts_every_llm_call(tmp_path: Path) -> None:
    rows = 6000
    (tmp_path / "data.csv").write_text("id,text\n" + "".join(f"r{i},text {i}\n" for i in range(rows)))
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS)
    sources = [
        PluginSource("ledger-tests", "ledger-tests", "1.0", _plugins()),
        PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
    ]
    registry = load_registry(sources=sources, environ={})
    InterruptingClient.calls, InterruptingClient.stop_at = 0, 4000
    run_id, first = run(path, registry)
    assert first.metadata.status == "interrupted"
    first_calls = InterruptingClient.calls
    assert 4000 <= first_calls < 2 * rows
    assert first.metadata.to_dict()["totals"]["llm_calls"] == first_calls

    InterruptingClient.stop_at = None
    _, last = run(path, registry, resume=run_id)
    assert last.metadata.status == "completed"
    assert InterruptingClient.calls == 2 * rows, "each row once per experiment over both attempts"
    totals = last.metadata.to_dict()["totals"]
    assert totals["llm_calls"] == 2 * rows
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (3 * 2 * rows, 2 * 2 * rows)
    store = RunStore.open(tmp_path / "output" / "elspeth-runs.sqlite", create=False)
    try:
        assert store.run(run_id)["totals"]["llm_calls"] == 2 * rows  # what `runs list/show` read
    finally:
        store.close()
