"""Registration by reference: ``register("pkg.mod:Class", name=...)`` lists a plugin without importing it.

The class is imported on first use (``Registry.get``, ``Registry.find``: a run, ``validate``,
``plugins show``); if that fails the entry becomes broken with the reason, and stays so.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from elspeth import ConfigError, PluginError, hookimpl
from elspeth.cli._show import show_plugin
from elspeth.config import PluginRef
from elspeth.config._yaml import Checker, SourceMap
from elspeth.discovery import PluginSource, load_registry
from elspeth.registry import Registry
from elspeth_testing import plugin_module

GOOD = '''
from pydantic import BaseModel


class LazySink:
    """Writes nothing, lazily."""

    name = "ignored_here"

    class Options(BaseModel):
        path: str

    def __init__(self, options: Options) -> None:
        self.options = options
'''


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write importable modules named uniquely for the test into ``tmp_path``; forget them afterwards."""
    written: list[str] = []

    def write(name: str, text: str) -> str:
        full = f"{name}_{len(written)}_{abs(hash(tmp_path)) % 10**8}"
        (tmp_path / f"{full}.py").write_text(textwrap.dedent(text), encoding="utf-8")
        written.append(full)
        return full

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for full in written:
        sys.modules.pop(full, None)


def registry_with(*calls: tuple[Any, dict[str, Any]]) -> Registry:
    @hookimpl
    def register_sinks(register: Any) -> None:
        for plugin, kwargs in calls:
            register(plugin, **kwargs)

    source = PluginSource("lazy", "elspeth-lazy", "1.2", plugin_module("lazy_plugin", register_sinks))
    return load_registry(sources=[source], include_builtins=False, environ={})


def test_a_reference_is_listed_without_importing_its_module(modules: Any) -> None:
    mod = modules("lazy_good", GOOD)
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy", "description": "Lazily nothing."}))
    (info,) = list(registry)
    assert (info.name, info.domain, info.status, info.description) == ("lazy", "sink", "ok", "Lazily nothing.")
    assert (info.distribution, info.version, info.target) == ("elspeth-lazy", "1.2", f"{mod}:LazySink")
    assert info.factory is None
    assert info.options is None
    assert mod not in sys.modules
    loaded = registry.get("sink", "lazy")
    assert mod in sys.modules
    assert loaded.factory is sys.modules[mod].LazySink
    assert loaded.options is sys.modules[mod].LazySink.Options
    assert loaded.status == "ok"
    assert loaded.description == "Lazily nothing."
    assert registry.get("sink", "lazy") is loaded  # imported once, kept in place of the reference
    assert list(registry) == [loaded]


def test_without_a_description_the_docstring_serves_once_loaded(modules: Any) -> None:
    mod = modules("lazy_doc", GOOD)
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy"}))
    (listed,) = list(registry)
    assert listed.description == ""
    (shown,) = registry.find("lazy")
    assert shown.description == "Writes nothing, lazily."


def test_a_reference_whose_module_fails_to_import_is_broken_with_the_reason(modules: Any) -> None:
    mod = modules("lazy_bad", "raise RuntimeError('the SDK is missing')\n")
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy", "description": "Broken on use."}))
    with pytest.raises(PluginError) as caught:
        registry.get("sink", "lazy")
    message = str(caught.value)
    assert message.startswith("sink 'lazy' from elspeth-lazy 1.2 is broken: ")
    assert f"importing {mod}:LazySink failed: RuntimeError: the SDK is missing" in message
    (info,) = list(registry)  # the listing now says so too
    assert info.status == "broken"
    assert "the SDK is missing" in (info.error or "")
    assert "lazy" not in registry.names("sink")


def test_a_reference_to_a_missing_class_is_broken(modules: Any) -> None:
    mod = modules("lazy_missing", GOOD)
    registry = registry_with((f"{mod}:Nope", {"name": "lazy"}))
    (info,) = registry.find("sink:lazy")
    assert info.status == "broken"
    assert info.error == f"importing {mod}:Nope failed: AttributeError: module '{mod}' has no attribute 'Nope'"


def test_a_referenced_class_without_a_pydantic_options_model_is_broken(modules: Any) -> None:
    mod = modules("lazy_no_options", "class Bare:\n    '''No options.'''\n")
    registry = registry_with((f"{mod}:Bare", {"name": "bare"}))
    with pytest.raises(PluginError, match="sink 'bare' needs an Options class that is a pydantic BaseModel"):
        registry.get("sink", "bare")


def test_plugins_show_reports_a_broken_reference(modules: Any, capsys: pytest.CaptureFixture[str]) -> None:
    mod = modules("lazy_show", "import not_installed_sdk_h8\n")
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy", "description": "Needs an SDK."}))
    show_plugin(registry, "lazy", as_json=False)
    out = capsys.readouterr().out
    assert "lazy (sink): Needs an SDK." in out
    assert "status broken" in out
    assert f"error: importing {mod}:LazySink failed: ModuleNotFoundError: No module named 'not_installed_sdk_h8'" in out


def test_settings_using_a_broken_reference_name_the_plugin_and_the_reason(modules: Any) -> None:
    mod = modules("lazy_settings", "raise ImportError('no wheel for this platform')\n")
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy"}))
    checker = Checker(SourceMap("settings.yaml", {("sinks", 0, "plugin"): 7}))
    ref = PluginRef.model_validate({"plugin": "lazy", "options": {"path": "x"}})
    assert registry.resolve("sink", ref, ("sinks", 0), checker) is None
    with pytest.raises(ConfigError) as caught:
        checker.raise_if_any()
    text = str(caught.value)
    assert text.startswith("sinks[0].plugin: ")
    assert text.endswith("(settings.yaml:7)")
    assert f"sink 'lazy' from elspeth-lazy 1.2 is broken: importing {mod}:LazySink failed: ImportError" in text


def test_settings_using_a_good_reference_validate_its_options(modules: Any) -> None:
    mod = modules("lazy_options", GOOD)
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy"}))
    checker = Checker(SourceMap("settings.yaml", {}))
    ref = PluginRef.model_validate({"plugin": "lazy", "options": {"path": "out.txt"}})
    resolved = registry.resolve("sink", ref, ("sinks", 0), checker)
    assert resolved is not None
    sink = resolved.build()
    assert isinstance(sink, sys.modules[mod].LazySink)
    assert sink.options.path == "out.txt"


@pytest.mark.parametrize(
    ("reference", "kwargs", "reason"),
    [
        ("no_colon", {"name": "x"}, "sink reference 'no_colon' must look like 'package.module:Class'"),
        ("pkg.mod:", {"name": "x"}, "sink reference 'pkg.mod:' must look like 'package.module:Class'"),
        ("pkg.mod:Cls", {}, "sink reference 'pkg.mod:Cls' needs name= (the class is not imported to read it)"),
        ("pkg.mod:Cls", {"name": "Bad Name"}, "needs a lowercase name (got 'Bad Name')"),
    ],
)
def test_a_malformed_reference_breaks_its_plugin_when_registering(
    reference: str, kwargs: dict[str, Any], reason: str
) -> None:
    registry = registry_with((reference, kwargs))
    (info,) = list(registry)
    assert (info.name, info.status, info.domain) == ("lazy", "broken", "")
    assert info.error is not None
    assert info.error.startswith("ValueError while registering: ")
    assert reason in info.error


def test_two_references_claiming_one_name_conflict_without_importing(modules: Any) -> None:
    mod = modules("lazy_twice", GOOD)
    registry = registry_with((f"{mod}:LazySink", {"name": "lazy"}), (f"{mod}:LazySink", {"name": "lazy"}))
    assert {i.status for i in registry} == {"broken"}
    assert mod not in sys.modules


def test_the_class_form_still_registers_eagerly(modules: Any) -> None:
    mod = modules("lazy_eager", GOOD)
    __import__(mod)
    cls = sys.modules[mod].LazySink
    registry = registry_with((cls, {"name": "eager"}))
    (info,) = list(registry)
    assert (info.factory, info.options, info.target, info.description) == (
        cls,
        cls.Options,
        None,
        "Writes nothing, lazily.",
    )
