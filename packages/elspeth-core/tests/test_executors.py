"""The executor domain: ``local`` is the default and runs the orchestrator here; another is chosen by settings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, RunResult, hookimpl
from elspeth_testing import plugin_module
from elspeth_testing.plugin import ElspethCli, MakeRegistry, RunSettings, WriteSettings

SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: static, options: {content: "noted"}}
prompts: {user: "{{ text }}"}
orchestrator: rows
"""
DATA = {"data.csv": "id,text\na,hello\nb,bye\n"}
HANDED: list[tuple[str, str, list[str]]] = []


class Counting:
    """Runs the orchestrator here, remembering what it was handed."""

    name = "counting"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        tag: str

    def __init__(self, options: Options) -> None:
        self.tag = options.tag

    async def run(self, orchestrator: Any, table: Any, ctx: Any) -> RunResult:
        HANDED.append((self.tag, type(orchestrator).__name__, list(table.columns)))
        result: RunResult = await orchestrator.run(table, ctx)
        return result


@hookimpl
def register_executors(register: Any) -> None:
    register(Counting)


PLUGINS = plugin_module("executors", register_executors)


def test_no_executor_runs_here_and_local_says_so_in_the_metadata(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    default = run_settings(write_settings(SETTINGS, DATA))
    local = run_settings(write_settings(SETTINGS + "executor: local\n", DATA, name="local.yaml"))
    for result in (default, local):
        assert [r.outputs["response"] for r in result.records] == ["noted", "noted"]
    credited = {(p["domain"], p["name"]): p["distribution"] for p in local.metadata.plugins}
    assert credited[("executor", "local")] == "elspeth-core"
    assert "executor" not in {p["domain"] for p in default.metadata.plugins}


def test_the_settings_executor_is_handed_the_run_once(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    HANDED.clear()
    path = write_settings(SETTINGS + "executor: {plugin: counting, options: {tag: t1}}\n", DATA)
    result = run_settings(path, make_registry(PLUGINS))
    assert HANDED == [("t1", "RowsOrchestrator", ["id", "text"])]
    assert [r.row_id for r in result.records] == ["a", "b"]


def test_an_unknown_executor_is_a_settings_error_naming_its_line(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(SETTINGS + "executor: {plugin: nowhere}\n", DATA)
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    message = str(caught.value)
    assert "unknown executor 'nowhere'" in message
    assert "settings.yaml:5" in message
    assert "local" in message  # the installed executors are listed


def test_local_refuses_options(write_settings: WriteSettings, run_settings: RunSettings) -> None:
    path = write_settings(SETTINGS + "executor: {plugin: local, options: {workers: 4}}\n", DATA)
    with pytest.raises(ConfigError, match="workers"):
        run_settings(path)


def test_a_bad_executor_exits_2_from_the_cli(write_settings: WriteSettings, elspeth_cli: ElspethCli) -> None:
    path = write_settings(SETTINGS + "executor: nowhere\n", DATA)
    done = elspeth_cli("run", str(path))
    assert done.returncode == 2, done.stderr
    assert "executor 'nowhere'" in done.stderr
