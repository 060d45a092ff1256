"""Fixtures: an experiment run through the real openai client against the LLM test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from elspeth import RunResult
from elspeth.config import load_settings_text
from elspeth.discovery import load_registry
from elspeth.engine import execute, prepare
from elspeth.resume import RunOptions
from elspeth_testing.llm_server import LLMTestServer

KEY_ENV = "JUDGES_TEST_KEY"
PRICES = {"*": {"input": 1.0, "output": 2.0}}  # per million tokens: every call costs something

RunJudged = Callable[..., RunResult]


@pytest.fixture
def server(llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch) -> LLMTestServer:
    monkeypatch.setenv(KEY_ENV, "sk-judges-test")
    llm_server.configure(api_key="sk-judges-test")
    return llm_server


def openai(server: LLMTestServer, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """The ``llm`` reference for the test server through the openai client."""
    return {"plugin": "openai", "options": {"model": model, "base_url": server.openai_base_url, "api_key_env": KEY_ENV}}


@pytest.fixture
def judge_llm(server: LLMTestServer) -> Callable[..., dict[str, Any]]:
    """A fresh ``llm`` reference to the test server (``judge_llm(model=...)``), for a judge's own client."""
    return lambda model="gpt-4o-mini": openai(server, model)


@pytest.fixture
def run_judged(tmp_path: Path, server: LLMTestServer) -> RunJudged:
    """Run an experiment with these orchestrator options over ``rows`` rows; returns the RunResult."""

    def run(
        options: Mapping[str, Any],
        *,
        rows: int | list[dict[str, Any]] = 12,
        settings_extra: Mapping[str, Any] | None = None,
        run_options: RunOptions | None = None,
    ) -> RunResult:
        data = [{"id": f"r{i:02d}", "text": f"item number {i}"} for i in range(rows)] if isinstance(rows, int) else rows
        with (tmp_path / "data.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
        settings = {
            "name": "judged",
            "datasource": {"plugin": "csv", "options": {"path": "data.csv", "id_column": "id"}},
            "llm": openai(server),
            "cost_tracker": {"plugin": "price_table", "options": {"prices": PRICES}},
            "prompts": {"user": "Rate: {{ text }}"},
            "orchestrator": {"plugin": "experiment", "options": dict(options)},
            "store": {"enabled": run_options is not None},
            "sinks": [],
            **(settings_extra or {}),
        }
        loaded = load_settings_text(json.dumps(settings), base_dir=tmp_path)
        registry = load_registry(environ={})

        async def main() -> RunResult:
            return await execute(await prepare(loaded, registry, options=run_options))

        return asyncio.run(main())

    return run
