"""Hooks are called through pluggy: tryfirst, trylast, specname and wrappers mean what pluggy says.

Each test builds the same plugins twice: once through Elspeth's discovery and a real run, once in a
bare ``pluggy.PluginManager`` called directly, and compares the order the implementations ran in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest
from pydantic import BaseModel

from elspeth import RunResult, hookimpl, hookspecs
from elspeth.discovery import PluginSource, load_registry
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

NO_LLM = """\
name: observed
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
orchestrator: rows
"""
DATA = {"data.csv": "id,text\na,one\n"}


def observers(calls: list[str]) -> list[ModuleType]:
    """Five plugins implementing run_finished in every way pluggy orders (registered in this order)."""

    @hookimpl(trylast=True)
    def run_finished(run_id: str) -> None:
        calls.append("last")

    last = plugin_module("last", run_finished)

    @hookimpl(tryfirst=True)
    def run_finished_first(result: RunResult) -> None:
        calls.append("first")

    first = plugin_module("first", run_finished=run_finished_first)

    @hookimpl(specname="run_finished")
    def finished_by_specname(run_id: str) -> None:
        calls.append("specname")

    by_specname = plugin_module("by_specname", finished_by_specname)

    @hookimpl
    def run_finished_plain(run_id: str) -> None:
        calls.append("plain")

    plain = plugin_module("plain", run_finished=run_finished_plain)

    @hookimpl(wrapper=True)
    def run_finished_wrapper(run_id: str) -> Iterator[None]:
        calls.append("wrapper before")
        result = yield
        calls.append("wrapper after")
        return result

    wrapper = plugin_module("wrapper", run_finished=run_finished_wrapper)
    return [last, first, by_specname, plain, wrapper]


def pluggy_order(modules: list[ModuleType], calls: list[str]) -> list[str]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module in modules:
        pm.register(module)
    pm.hook.run_finished(run_id="x", result=None)
    order = list(calls)
    calls.clear()
    return order


def test_observer_order_is_pluggys_own_wrapper_included(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    calls: list[str] = []
    modules = observers(calls)
    expected = pluggy_order(modules, calls)
    assert expected[0] == "wrapper before"
    assert expected[-1] == "wrapper after"
    assert expected.index("first") < expected.index("plain") < expected.index("last")

    run_settings(write_settings(NO_LLM, DATA), make_registry(*modules))

    assert calls == expected


def test_a_raising_observer_leaves_the_others_and_the_wrapper_running(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    calls: list[str] = []

    @hookimpl(tryfirst=True)
    def run_finished(run_id: str) -> None:
        raise RuntimeError("observer bug")

    faulty = PluginSource("faulty", "elspeth-faulty", "0.1", plugin_module("faulty", run_finished))
    result = run_settings(write_settings(NO_LLM, DATA), make_registry(*observers(calls), faulty))

    assert calls[0] == "wrapper before"
    assert calls[-1] == "wrapper after"
    assert {"first", "plain", "last", "specname"} <= set(calls)
    assert "run_finished observer elspeth-faulty:faulty raised RuntimeError: observer bug" in (result.metadata.warnings)


def test_a_raising_wrapper_is_a_warning_naming_its_plugin(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    @hookimpl(wrapper=True)
    def row_finished(record: Any) -> Iterator[None]:
        yield
        raise ValueError("wrapper bug")

    bad = PluginSource("badwrap", "elspeth-badwrap", "0.1", plugin_module("badwrap", row_finished))
    result = run_settings(write_settings(NO_LLM, DATA), make_registry(bad))

    assert [r.row_id for r in result.records] == ["a"]
    assert result.metadata.warnings == ["row_finished observer elspeth-badwrap:badwrap raised ValueError: wrapper bug"]


def _sink(name: str) -> type:
    class Options(BaseModel):
        pass

    return type(name, (), {"name": name, "Options": Options, "__doc__": f"The {name} sink."})


def test_registration_goes_through_pluggy_specname_and_order_included() -> None:
    seen: list[str] = []

    @hookimpl(specname="register_sinks")
    def sinks_please(register: Any) -> None:
        seen.append("specname")
        register(_sink("by_specname"))

    @hookimpl(tryfirst=True)
    def register_sinks(register: Any) -> None:
        seen.append("tryfirst")
        register(_sink("eager"))

    sources = [
        PluginSource("named", "elspeth-named", "1.0", plugin_module("named", sinks_please)),
        PluginSource("eager", "elspeth-eager", "1.0", plugin_module("eager", register_sinks)),
    ]
    registry = load_registry(sources=sources, include_builtins=False, environ={})

    assert seen == ["tryfirst", "specname"]  # pluggy's order: tryfirst first, whatever the registration order
    assert registry.names("sink") == ["by_specname", "eager"]
    assert registry.get("sink", "by_specname").distribution == "elspeth-named"
    assert registry.get("sink", "eager").distribution == "elspeth-eager"


def test_a_hook_named_like_a_spec_is_reported_as_that_typo_blaming_nobody_else() -> None:
    @hookimpl
    def register_sink(register: Any) -> None:
        register(_sink("never"))

    @hookimpl
    def register_sinks(register: Any) -> None:
        register(_sink("fine"))

    sources = [
        PluginSource("typo", "elspeth-typo", "1.0", plugin_module("typo", register_sink)),
        PluginSource("ok", "elspeth-ok", "1.0", plugin_module("ok", register_sinks)),
        PluginSource("ghost", "elspeth-ghost", "1.0", "elspeth_ghost_not_installed"),  # broken: not to be blamed
    ]
    registry = load_registry(sources=sources, include_builtins=False, environ={})

    (typo,) = registry.find("typo")
    assert typo.status == "broken"
    assert typo.error == (
        "implements register_sink (did you mean register_sinks?), which no hookspec defines; "
        "a hook implementation is named exactly as its hookspec"
    )
    assert "ghost" not in typo.error
    assert registry.names("sink") == ["fine"]


def test_trace_is_pluggys_and_shows_observer_calls(
    write_settings: WriteSettings,
    run_settings: RunSettings,
    make_registry: MakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("ELSPETH_TRACE", "1")
    calls: list[str] = []
    run_settings(write_settings(NO_LLM, DATA), make_registry(*observers(calls)))
    err = capfd.readouterr().err
    assert "[elspeth trace]   register_sinks [hook]" in err
    assert "[elspeth trace]   row_finished [hook]" in err
    assert "[elspeth trace]   run_finished [hook]" in err
    assert "finish run_finished" in err
