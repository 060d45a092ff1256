"""Discovery: each plugin module loads on its own, and whatever breaks is listed with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import PluginError, hookimpl, hookspec
from elspeth.discovery import PluginSource, load_registry
from elspeth.registry import Registry
from elspeth_testing import plugin_module


class NoteSink:
    """Writes notes nowhere."""

    name = "notes"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options


class NoOptions:
    """Has a name but no Options."""

    name = "bare"


class Limiter:
    """Waits a little."""

    name = "gentle"

    class Options(BaseModel):
        pass


@hookimpl
def register_sinks(register: Any) -> None:
    register(NoteSink)


def source(label: str, *hooks: Any, dist: str | None = None, version: str = "1.0", **attrs: Any) -> PluginSource:
    return PluginSource(label, dist or f"elspeth-{label}", version, plugin_module(f"{label}_plugin", *hooks, **attrs))


def load(*sources: PluginSource, builtins: bool = False, **kwargs: Any) -> Registry:
    kwargs.setdefault("environ", {})
    return load_registry(sources=list(sources), include_builtins=builtins, **kwargs)


def entry(registry: Registry, name: str) -> Any:
    (info,) = registry.find(name)
    return info


def test_builtins_register_like_any_plugin() -> None:
    registry = load(builtins=True)
    csv_sink = registry.get("sink", "csv")
    assert (csv_sink.distribution, csv_sink.entry_point) == ("elspeth-core", "sinks")
    assert {"mock", "static"} <= set(registry.names("llm_client"))
    assert "csv" in registry.names("datasource")
    assert {i.distribution for i in registry} == {"elspeth-core"}
    assert csv_sink.description == "Records as a CSV file, one row per record; failures optionally in a second file."


def test_import_failure_is_broken_with_its_reason_and_others_still_load() -> None:
    missing = PluginSource("ghost", "elspeth-ghost", "0.3", "elspeth_ghost_that_is_not_installed")
    registry = load(missing, source("notes", register_sinks))
    ghost = entry(registry, "ghost")
    assert ghost.status == "broken"
    assert ghost.error.startswith("import failed: ModuleNotFoundError")
    assert "elspeth_ghost_that_is_not_installed" in ghost.error
    assert registry.get("sink", "notes").factory is NoteSink


def test_module_raising_at_import_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elspeth_explodes.py").write_text("raise RuntimeError('needs a GPU')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load(PluginSource("explodes", "elspeth-explodes", "2.0", "elspeth_explodes"), builtins=True)
    assert entry(registry, "explodes").error == "import failed: RuntimeError: needs a GPU"
    assert "csv" in registry.names("sink")


def test_hook_that_raises_breaks_only_its_plugin() -> None:
    @hookimpl
    def register_sinks(register: Any) -> None:
        register(NoteSink)
        raise RuntimeError("config file missing")

    registry = load(source("flaky", register_sinks), builtins=True)
    flaky = entry(registry, "flaky")
    assert (flaky.status, flaky.error) == ("broken", "RuntimeError while registering: config file missing")
    assert registry.names("sink") == load(builtins=True).names("sink")  # nothing it registered before raising is kept
    assert "notes" not in registry.names("sink")


def test_hook_without_a_spec_is_broken_and_says_why() -> None:
    @hookimpl
    def register_widgets(register: Any) -> None:
        register(NoteSink)

    registry = load(source("widgets", register_widgets, register_sinks))
    widgets = entry(registry, "widgets")
    assert widgets.status == "broken"
    assert "implements register_widgets, which no installed distribution specifies" in widgets.error
    assert registry.names("sink") == []  # the whole module is out, not half of it


def test_bad_hook_signature_is_broken() -> None:
    @hookimpl
    def register_sinks(register: Any, colour: str) -> None:
        register(NoteSink)

    registry = load(source("wrongargs", register_sinks), source("fine", register_sinks_ok()))
    bad = entry(registry, "wrongargs")
    assert bad.status == "broken"
    assert "colour" in bad.error
    assert registry.get("sink", "notes").distribution == "elspeth-fine"


def register_sinks_ok() -> Any:
    @hookimpl
    def register_sinks(register: Any) -> None:
        register(NoteSink)

    return register_sinks


def test_hook_may_take_fewer_arguments_than_its_spec() -> None:
    called: list[str] = []

    @hookimpl
    def register_sinks() -> None:
        called.append("yes")

    registry = load(source("quiet", register_sinks))
    assert called == ["yes"]
    assert [i.status for i in registry] == []


def test_two_plugins_claiming_one_name_are_both_broken_and_named() -> None:
    registry = load(source("first", register_sinks, version="1.2"), source("second", register_sinks_ok()))
    claims = registry.find("sink:notes")
    assert [c.status for c in claims] == ["broken", "broken"]
    message = claims[0].error
    assert "elspeth-first 1.2 (entry point 'first')" in message
    assert "elspeth-second 1.0 (entry point 'second')" in message
    assert registry.names("sink") == []
    with pytest.raises(PluginError, match=r"claimed by both elspeth-first 1\.2"):
        registry.get("sink", "notes")


def test_one_name_in_two_domains_is_no_conflict() -> None:
    @hookimpl
    def register_llm_middleware(register: Any) -> None:
        register(NoteSink)

    registry = load(source("a", register_sinks), source("b", register_llm_middleware))
    assert registry.get("sink", "notes").status == registry.get("llm_middleware", "notes").status == "ok"


@pytest.mark.parametrize(
    ("value", "loaded"),
    [
        (None, ["alpha", "beta"]),
        ("", []),
        ("beta", ["beta"]),
        (" Elspeth_Alpha , nothing-else", ["alpha"]),  # distribution names count too, spelt loosely
    ],
)
def test_elspeth_load_plugins_chooses_what_loads(value: str | None, loaded: list[str]) -> None:
    environ = {} if value is None else {"ELSPETH_LOAD_PLUGINS": value}
    registry = load(
        source("alpha", register_sinks), source("beta", register_llm_middleware_notes()), builtins=True, environ=environ
    )
    working = sorted(i.entry_point for i in registry if i.status == "ok" and i.distribution != "elspeth-core")
    assert working == loaded
    assert "csv" in registry.names("sink")  # builtins always load
    for info in registry:
        if info.status == "disabled":
            assert info.error == "not in ELSPETH_LOAD_PLUGINS"


def register_llm_middleware_notes() -> Any:
    @hookimpl
    def register_llm_middleware(register: Any) -> None:
        register(NoteSink)

    return register_llm_middleware


def test_disable_plugins_by_environment_and_argument() -> None:
    sources = [source("alpha", register_sinks), source("beta", register_llm_middleware_notes())]
    registry = load(*sources, environ={"ELSPETH_DISABLE_PLUGINS": "alpha"}, disabled=["elspeth-beta"])
    assert [(i.name, i.status) for i in registry] == [("alpha", "disabled"), ("beta", "disabled")]
    assert "--disable-plugin" in entry(registry, "alpha").error
    with pytest.raises(PluginError, match="unknown sink 'notes'"):
        registry.get("sink", "notes")


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELSPETH_DISABLE_PLUGINS", "alpha")
    monkeypatch.delenv("ELSPETH_LOAD_PLUGINS", raising=False)
    registry = load_registry(sources=[source("alpha", register_sinks)], include_builtins=False)
    assert entry(registry, "alpha").status == "disabled"


def widget_specs() -> Any:
    @hookspec
    def register_widgets(register: Any) -> None:
        """Register widgets."""

    return plugin_module("widget_specs", register_widgets)


def test_add_hookspecs_adds_a_domain_whatever_the_load_order() -> None:
    specs = widget_specs()

    @hookimpl
    def add_hookspecs(add: Any) -> None:
        add(specs, domains={"register_widgets": "widget"})

    @hookimpl
    def register_widgets(register: Any) -> None:
        register(NoteSink, name="knob", description="turns")

    user = source("knobs", register_widgets)
    host = source("host", add_hookspecs)
    for order in ([host, user], [user, host]):
        registry = load(*order)
        knob = registry.get("widget", "knob")
        assert (knob.distribution, knob.description) == ("elspeth-knobs", "turns")
        assert "widget" in registry.domains()


def test_add_hookspecs_naming_a_missing_hook_breaks_that_plugin() -> None:
    specs = widget_specs()

    @hookimpl
    def add_hookspecs(add: Any) -> None:
        add(specs, domains={"register_gadgets": "gadget"})

    registry = load(source("host", add_hookspecs), source("notes", register_sinks))
    host = entry(registry, "host")
    assert host.status == "broken"
    assert "widget_specs has no hookspec 'register_gadgets'" in host.error
    assert registry.names("sink") == ["notes"]


def test_register_controls_files_each_control_under_its_kind() -> None:
    @hookimpl
    def register_controls(register: Any) -> None:
        register(Limiter, kind="rate_limiter")
        register(Limiter, kind="cost_tracker", name="pricer")

    registry = load(source("controls", register_controls))
    assert registry.names("rate_limiter") == ["gentle"]
    assert registry.names("cost_tracker") == ["pricer"]


@pytest.mark.parametrize(
    ("hook_name", "call", "message"),
    [
        ("register_controls", lambda r: r(Limiter), "register_controls needs kind= one of rate_limiter, cost_tracker"),
        ("register_sinks", lambda r: r(Limiter, kind="rate_limiter"), "kind= is only for register_controls"),
        ("register_sinks", lambda r: r(NoOptions), "sink 'bare' needs an Options class that is a pydantic BaseModel"),
        ("register_sinks", lambda r: r(Limiter, name="Bad Name"), "needs a lowercase name (got 'Bad Name')"),
        ("register_sinks", lambda r: r(type("Anon", (), {"Options": Limiter.Options})), "needs a lowercase name"),
    ],
)
def test_a_bad_registrar_call_gives_a_broken_entry(hook_name: str, call: Any, message: str) -> None:
    def hook(register: Any) -> None:
        call(register)

    registry = load(source("bad", **{hook_name: hookimpl(hook)}), source("notes", register_sinks))
    bad = entry(registry, "bad")
    assert bad.status == "broken"
    assert message in bad.error
    assert registry.names("sink") == ["notes"]


def test_trace_prints_hook_calls_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    @hookimpl
    def add_hookspecs(add: Any) -> None:
        add(widget_specs(), domains={"register_widgets": "widget"})

    monkeypatch.delenv("ELSPETH_TRACE", raising=False)
    load(source("host", add_hookspecs))
    assert capfd.readouterr().err == ""
    monkeypatch.setenv("ELSPETH_TRACE", "1")
    load(source("host", add_hookspecs))
    err = capfd.readouterr().err
    assert "[elspeth trace]   add_hookspecs [hook]" in err
    assert "finish add_hookspecs" in err


def test_broken_plugin_is_mentioned_when_a_name_is_unknown() -> None:
    registry = load(PluginSource("ghost", "elspeth-ghost", "0.3", "elspeth_ghost_that_is_not_installed"))
    with pytest.raises(PluginError, match="Some plugins failed to load"):
        registry.get("sink", "ghostly")


def widget_host() -> PluginSource:
    specs = widget_specs()

    @hookimpl
    def add_hookspecs(add: Any) -> None:
        add(specs, domains={"register_widgets": "widget"})

    return source("host", add_hookspecs)


def test_a_bad_signature_for_an_added_hook_breaks_that_plugin_not_the_host() -> None:
    # pluggy checks a hook registered before its spec only when the spec is added, and raises there:
    # the host adding the spec must not be blamed for it, whichever of the two loads first
    @hookimpl
    def register_widgets(register: Any, colour: str) -> None:
        register(NoteSink, name="bad-knob")

    @hookimpl(specname="register_widgets")
    def register_widgets_ok(register: Any) -> None:
        register(NoteSink, name="knob")

    errors = []
    for order in ("faulty host good", "host faulty good"):
        faulty, host, good = source("faulty", register_widgets), widget_host(), source("good", register_widgets_ok)
        named = {"faulty": faulty, "host": host, "good": good}
        registry = load(*(named[label] for label in order.split()))
        assert [i.entry_point for i in registry if i.status != "ok"] == ["faulty"], order  # not the host
        assert "widget" in registry.domains(), order
        assert registry.names("widget") == ["knob"], order
        errors.append(entry(registry, "faulty").error)
    first, second = errors
    assert first == second
    assert first.startswith(
        "a hook does not match its spec: Plugin 'elspeth-faulty:faulty' for hook 'register_widgets'"
    )
    assert "; hookimpl definition: register_widgets(register: 'Any', colour: 'str')" in first
    assert "Argument(s) {'colour'} are declared in the hookimpl but can not be found in the hookspec" in first


def test_a_plugin_module_raising_system_exit_at_import_is_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elspeth_quits.py").write_text("raise SystemExit('no licence server')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load(PluginSource("quits", "elspeth-quits", "1.0", "elspeth_quits"), source("notes", register_sinks))
    assert entry(registry, "quits").error == "import failed: SystemExit: no licence server"
    assert registry.names("sink") == ["notes"]


def test_a_hook_raising_system_exit_breaks_only_its_plugin() -> None:
    @hookimpl
    def register_sinks(register: Any) -> None:
        raise SystemExit(3)

    @hookimpl
    def add_hookspecs(add: Any) -> None:
        raise SystemExit("bye")

    registry = load(
        source("quitter", register_sinks), source("host", add_hookspecs), source("notes", register_sinks_ok())
    )
    assert entry(registry, "quitter").error == "SystemExit while registering: 3"
    assert entry(registry, "host").error == "SystemExit: bye"
    assert registry.names("sink") == ["notes"]


@hookimpl
def register_widgets(register: Any) -> None:
    register(NoteSink, name="knob")


def test_a_hook_whose_specifier_is_disabled_says_so_instead_of_not_installed() -> None:
    registry = load(widget_host(), source("knobs", register_widgets), environ={"ELSPETH_DISABLE_PLUGINS": "host"})
    knobs = entry(registry, "knobs")
    assert knobs.status == "broken"
    assert knobs.error == (
        "implements register_widgets, which no loaded distribution specifies; installed but not loaded: "
        "elspeth-host (disabled: disabled by --disable-plugin / ELSPETH_DISABLE_PLUGINS). "
        "Enable the one that defines it, or disable 'knobs' too; "
        "if none of them does, is the distribution that defines it installed?"
    )
    assert "no installed distribution" not in knobs.error


def test_many_distributions_not_loaded_are_listed_three_at_most() -> None:
    others = [PluginSource(f"o{i}", f"elspeth-o{i}", "1.0", plugin_module(f"o{i}_plugin")) for i in range(5)]
    registry = load(*others, source("knobs", register_widgets), environ={"ELSPETH_LOAD_PLUGINS": "knobs"})
    error = entry(registry, "knobs").error
    assert "installed but not loaded: elspeth-o0 (disabled: not in ELSPETH_LOAD_PLUGINS), elspeth-o1 " in error
    assert "elspeth-o2 (disabled: not in ELSPETH_LOAD_PLUGINS) and 2 more (see `elspeth plugins list`)." in error
    assert "elspeth-o3" not in error


def test_a_hook_whose_specifier_is_not_loaded_is_narrowed_to_what_the_plugin_requires() -> None:
    # elspeth-testing is installed wherever these tests run and requires aiohttp: of two disabled
    # distributions, the one it requires is named (the names come from the installed metadata)
    knobs = PluginSource("knobs", "elspeth-testing", "0.1", plugin_module("knobs_plugin", register_widgets))
    other = PluginSource("other", "elspeth-other", "1.0", plugin_module("other_plugin"))
    host = PluginSource("host", "aiohttp", "3.9", widget_host().load)
    registry = load(other, host, knobs, environ={"ELSPETH_LOAD_PLUGINS": "knobs"})
    error = entry(registry, "knobs").error
    assert "installed but not loaded: aiohttp (disabled: not in ELSPETH_LOAD_PLUGINS)." in error
    assert "elspeth-other" not in error
    assert error.endswith("Enable the one that defines it, or disable 'knobs' too")  # no doubt left when narrowed


def test_a_hook_nobody_specifies_still_asks_whether_the_distribution_is_installed() -> None:
    registry = load(source("knobs", register_widgets), source("notes", register_sinks))
    assert entry(registry, "knobs").error == (
        "implements register_widgets, which no installed distribution specifies "
        "(is the distribution that defines it installed?)"
    )


def test_each_registration_hook_files_its_classes_under_its_own_domain() -> None:
    @hookimpl
    def register_orchestrators(register: Any) -> None:
        register(NoteSink, name="note-orchestrator")

    @hookimpl
    def register_datasources(register: Any) -> None:
        register(NoteSink, name="note-source")

    @hookimpl
    def register_llm_clients(register: Any) -> None:
        register(NoteSink, name="note-client")

    @hookimpl
    def register_processors(register: Any) -> None:
        register(NoteSink, name="note-processor")

    @hookimpl
    def register_utilities(register: Any) -> None:
        register(NoteSink, name="note-utility")

    hooks = [register_orchestrators, register_datasources, register_llm_clients, register_processors]
    registry = load(source("everything", *hooks, register_utilities, register_sinks))
    assert {(i.domain, i.name) for i in registry} == {
        ("orchestrator", "note-orchestrator"),
        ("datasource", "note-source"),
        ("llm_client", "note-client"),
        ("processor", "note-processor"),
        ("utility", "note-utility"),
        ("sink", "notes"),
    }
    assert {i.status for i in registry} == {"ok"}
    assert registry.get("datasource", "note-source").factory is NoteSink
