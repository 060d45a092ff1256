"""A resumed experiment's early stop counts the rows finished before the resume, as the first run would have."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from elspeth import LLMRequest, LLMResponse, Usage, hookimpl
from elspeth.config import load_settings
from elspeth.discovery import PluginSource, load_registry
from elspeth.engine import execute, prepare
from elspeth.registry import Registry
from elspeth.resume import RunOptions


class Threes:
    """Every answer costs three prompt tokens."""

    name = "threes"

    class Options(BaseModel):
        pass

    def __init__(self, options: Options) -> None:
        self.options = options

    async def generate(self, request: LLMRequest) -> LLMResponse:
        return LLMResponse(content="Score: 1", usage=Usage(3, 1), model="threes")


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(Threes)


SETTINGS = """
name: resumed-stop
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: threes}
prompts: {user: "Rate {{ text }}"}
concurrency: 1
orchestrator:
  plugin: experiment
  options:
    early_stop:
      - {plugin: threshold, options: {metric: prompt_tokens, statistic: sum, comparison: gte, threshold: 15}}
"""


def _registry() -> Registry:
    sources = [
        PluginSource("threes", "threes", "1.0", types.SimpleNamespace(register_llm_clients=register_llm_clients)),
        PluginSource("experiment", "elspeth-orchestrator-experiment", "0.1.0", "elspeth_experiment.plugin"),
    ]
    return load_registry(sources=sources, environ={})


def _rows(path: Path, n: int) -> None:
    path.write_text("id,text\n" + "".join(f"r{i},text {i}\n" for i in range(n)))


def _run(path: Path, **options: Any) -> tuple[Any, Any]:
    async def go() -> tuple[Any, Any]:
        prepared = await prepare(load_settings(path), _registry(), options=RunOptions(**options))
        return prepared, await execute(prepared)

    return asyncio.run(go())


def test_rows_restored_on_resume_feed_the_early_stop(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS)
    _rows(tmp_path / "data.csv", 4)
    prepared, first = _run(settings)
    assert first.aggregates["experiments"]["default"]["early_stop"] is None  # 4 rows x 3 tokens = 12 < 15
    assert len(first.records) == 4

    _rows(tmp_path / "data.csv", 10)  # the same four rows, and six more
    _, resumed = _run(settings, resume=prepared.context.run_id)
    exp = resumed.aggregates["experiments"]["default"]
    # the four restored rows count: the fifth row brings the sum to 15 and stops the experiment there
    assert exp["early_stop"]["row_id"] == "r4"
    assert exp["early_stop"]["rows_observed"] == 5
    assert (exp["succeeded"], exp["not_run"]) == (5, 5)
    assert resumed.metadata.to_dict()["resumed_rows"] == 4
