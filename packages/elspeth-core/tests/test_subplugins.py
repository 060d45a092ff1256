"""The helpers an orchestrator uses for plugins named in its own options: open, close, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from elspeth import PluginContext, RunFailed, close_plugins, keyed_plugins, open_plugins, plugin_summaries
from elspeth_testing import run_async


class Part:
    def __init__(self, log: list[str], name: str, fail_open: bool = False, fail_close: bool = False) -> None:
        self.log, self.name, self.fail_open, self.fail_close = log, name, fail_open, fail_close

    def open(self, ctx: PluginContext) -> None:
        if self.fail_open:
            raise OSError("schema file missing")
        self.log.append(f"open {self.name}")

    async def aclose(self) -> None:
        self.log.append(f"close {self.name}")
        if self.fail_close:
            raise RuntimeError("already closed")

    async def summary(self) -> dict[str, Any]:
        return {"name": self.name}


def test_a_plugin_that_cannot_open_names_its_place_and_closes_those_before_it(tmp_path: Path) -> None:
    log: list[str] = []
    ctx = PluginContext(run_id="r", name="n", base_dir=tmp_path, output_dir=tmp_path)
    plugins = [("a", Part(log, "a")), ("b", Part(log, "b", fail_open=True)), ("c", Part(log, "c"))]
    with pytest.raises(RunFailed, match=r"rule 'b' \(orchestrator\.options\.rules\[1\]\) could not open: OSError"):
        run_async(open_plugins(plugins, ctx, label="rule", option="rules"))
    assert log == ["open a", "close a"]  # c was never opened, b never finished opening


def test_closing_is_best_effort_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    plugins = [("a", Part(log, "a", fail_close=True)), ("b", Part(log, "b")), ("plain", object())]
    with caplog.at_level(logging.WARNING, logger="elspeth.orchestration"):
        run_async(close_plugins(plugins))
    assert log == ["close a", "close b"]
    assert "'a' failed to close: already closed" in caplog.text


def test_summaries_are_keyed_by_place_when_a_name_repeats() -> None:
    log: list[str] = []
    plugins = [("pii", Part(log, "first")), ("clean", Part(log, "c")), ("pii", Part(log, "second"))]
    assert [k for k, _ in keyed_plugins(plugins)] == ["pii[0]", "clean", "pii[2]"]
    assert run_async(plugin_summaries(plugins)) == {
        "pii[0]": {"name": "first"},
        "clean": {"name": "c"},
        "pii[2]": {"name": "second"},
    }
