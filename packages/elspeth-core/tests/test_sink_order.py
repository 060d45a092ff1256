"""Sinks that package other sinks' files declare whom they follow by name (``after``); the engine sorts them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import Artifact, ConfigError, PluginContext, RunResult, hookimpl
from elspeth.writing import order_sinks
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings


def sink(name: str, index: int, after: Any = None) -> tuple[Any, Any]:
    obj = SimpleNamespace() if after is None else SimpleNamespace(after=after)
    return SimpleNamespace(info=SimpleNamespace(name=name), loc=("sinks", index)), obj


def names(sinks: list[tuple[Any, Any]]) -> list[str]:
    return [f"{r.info.name}{r.loc[-1]}" for r, _ in sinks]


def test_star_follows_every_sink_that_declares_nothing_and_names_follow_their_sinks() -> None:
    listed = [sink("azure_blob", 0, ("*", "signed")), sink("signed", 1, ("*",)), sink("csv", 2), sink("json", 3)]
    assert names(order_sinks(listed)) == ["csv2", "json3", "signed1", "azure_blob0"]


def test_the_order_is_the_settings_order_where_nothing_is_declared_and_unknown_names_are_ignored() -> None:
    listed = [sink("json", 0), sink("csv", 1), sink("late", 2, ("nobody",)), sink("jsonl", 3)]
    assert names(order_sinks(listed)) == ["json0", "csv1", "late2", "jsonl3"]
    assert names(order_sinks([sink("b", 0, "a"), sink("a", 1)])) == ["a1", "b0"], "a plain string is one name"


def test_a_sink_named_twice_is_followed_in_both_places() -> None:
    listed = [sink("signed", 0, ("*",)), sink("csv", 1), sink("csv", 2), sink("other", 3, ("csv",))]
    assert names(order_sinks(listed)) == ["csv1", "csv2", "signed0", "other3"]


def test_a_cycle_is_a_config_error_naming_the_sinks() -> None:
    listed = [sink("csv", 0), sink("pack", 1, ("seal",)), sink("seal", 2, ("pack",))]
    with pytest.raises(ConfigError) as caught:
        order_sinks(listed)
    message = str(caught.value)
    assert "cycle" in message
    assert "sinks[1] (pack, after=('seal',))" in message
    assert "sinks[2] (seal, after=('pack',))" in message
    assert "csv" not in message


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


WROTE: list[str] = []


class Pack:
    """Lists what the sinks before it wrote."""

    name = "pack"
    Options = Opts
    after: ClassVar[tuple[str, ...]] = ("*",)

    def __init__(self, options: Opts) -> None:
        self.options = options

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        WROTE.append(self.name)
        return []


class Seal(Pack):
    """Follows pack, and pack follows it too when told."""

    name = "seal"
    after: ClassVar[tuple[str, ...]] = ("pack",)


@hookimpl
def register_sinks(register: Any) -> None:
    register(Pack)
    register(Seal)


PLUGINS = plugin_module("sink_order_plugins", register_sinks)
SETTINGS = """\
name: order-test
datasource:
  plugin: csv
  options:
    path: data.csv
orchestrator: rows
sinks:
  - SINKS
"""


def test_the_engine_writes_sinks_in_the_declared_order(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    WROTE.clear()
    text = SETTINGS.replace("SINKS", "seal\n  - pack\n  - jsonl")
    result = run_settings(write_settings(text, {"data.csv": "a\n1\n"}), make_registry(PLUGINS))
    assert WROTE == ["pack", "seal"]
    assert [a["sink"] for a in result.metadata.to_dict()["artifacts"]] == ["jsonl"]


class Tick(Pack):
    """Writes after tock."""

    name = "tick"
    after: ClassVar[tuple[str, ...]] = ("tock",)


class Tock(Pack):
    """Writes after tick (and after a sink no run has): with tick, a cycle."""

    name = "tock"
    after: ClassVar[tuple[str, ...]] = ("tick", "nobody")


def _register_cycle(register: Any) -> None:
    register(Tick)
    register(Tock)


_register_cycle.__name__ = "register_sinks"
CYCLE = plugin_module("sink_cycle_plugins", hookimpl(_register_cycle))


@pytest.mark.parametrize("command", ["validate", "run"])
def test_sinks_whose_after_form_a_cycle_make_the_cli_exit_2_naming_both(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_registry: MakeRegistry
) -> None:
    from typer.testing import CliRunner

    from elspeth import cli

    (tmp_path / "data.csv").write_text("a\n1\n", encoding="utf-8")
    text = SETTINGS.replace("SINKS", "csv\n  - tick\n  - tock")
    (tmp_path / "settings.yaml").write_text(text.replace("name: order-test", "name: cycle"), encoding="utf-8")
    monkeypatch.setattr(cli, "_registry", lambda: make_registry(CYCLE))
    monkeypatch.chdir(tmp_path)
    WROTE.clear()
    args = [command, "settings.yaml"] + (["--no-progress"] if command == "run" else [])
    result = CliRunner().invoke(cli.app, args)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, output
    assert "cycle" in output
    assert "sinks[1] (tick, after=('tock',))" in output
    assert "sinks[2] (tock, after=('tick', 'nobody'))" in output
    assert "sinks[0]" not in output, "the csv sink takes no part in the cycle"
    assert "Traceback" not in output
    assert WROTE == [], "no sink wrote"
    assert not (tmp_path / "output").exists(), "a bad settings file leaves nothing behind: no store, no output"
