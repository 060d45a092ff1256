"""The compatibility policy (docs/compatibility.md) holds: retired names and hooks warn for a minor release, and the
CHANGELOG lists what changed."""

from __future__ import annotations

import re
import sys
import types
import warnings
from pathlib import Path

import pytest
from packaging.version import Version
from pydantic import BaseModel

import elspeth
from elspeth import Registrar, hookimpl, hookspec
from elspeth_testing import build_registry, plugin_module

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "docs" / "compatibility.md"
CHANGELOG = ROOT / "CHANGELOG.md"


@pytest.fixture
def deprecated_name(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(elspeth._DEPRECATED, "old_invoke", ("elspeth", "invoke", "0.9"))
    return "old_invoke"


def test_a_deprecated_name_still_gives_the_object_and_warns_naming_what_to_use(deprecated_name: str) -> None:
    with pytest.warns(DeprecationWarning, match="old_invoke") as caught:
        value = getattr(elspeth, deprecated_name)
    assert value is elspeth.invoke
    (warning,) = caught
    assert str(warning.message) == (
        "elspeth.old_invoke is deprecated and will be removed in elspeth-core 0.9; use elspeth.invoke"
    )
    assert warning.filename == __file__, "the warning must point at the code that used the name"


def test_from_import_of_a_deprecated_name_warns_every_time(deprecated_name: str) -> None:
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="old_invoke is deprecated"):
            from elspeth import old_invoke  # type: ignore[attr-defined]  # noqa: F401
    assert deprecated_name not in elspeth.__all__
    assert deprecated_name not in vars(elspeth), "a deprecated name must not be cached, or it would warn only once"


def test_a_deprecated_name_in_a_deep_module_names_that_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(elspeth._DEPRECATED, "OldPolicy", ("elspeth.orchestration.retry", "RetryPolicy", "0.9"))
    with pytest.warns(DeprecationWarning, match=r"use elspeth\.orchestration\.retry\.RetryPolicy$"):
        assert elspeth.OldPolicy is elspeth.RetryPolicy  # type: ignore[attr-defined]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'elspeth' has no attribute 'NoSuchName'"):
        elspeth.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


def test_every_deprecated_name_resolves_is_out_of_all_and_is_in_the_changelog() -> None:
    current = Version(elspeth.__version__)
    changelog = CHANGELOG.read_text(encoding="utf-8")
    for name, (module, attribute, removed_in) in elspeth._DEPRECATED.items():
        assert name not in elspeth.__all__
        assert Version(removed_in) > current, f"elspeth.{name} was to be removed in {removed_in}: remove it"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert getattr(elspeth, name) is getattr(sys.modules.get(module) or __import__(module), attribute, None)
        assert f"`elspeth.{name}`" in changelog, f"CHANGELOG.md does not list the deprecation of elspeth.{name}"


def test_a_deprecated_hook_warns_for_a_plugin_that_implements_it_through_discovery() -> None:
    specs = types.ModuleType("retiring_specs")

    @hookspec(warn_on_impl=DeprecationWarning("register_gadgets is deprecated; use register_widgets"))
    def register_gadgets(register: Registrar) -> None:
        """Register gadgets (domain ``gadget``)."""

    specs.register_gadgets = register_gadgets  # type: ignore[attr-defined]

    @hookimpl
    def add_hookspecs(add: object) -> None:
        add(specs, domains={"register_gadgets": "gadget"})  # type: ignore[operator]

    class Gadget:
        """A gadget."""

        name = "gadget"
        Options = BaseModel

    @hookimpl
    def register_gadgets(register: Registrar) -> None:
        register(Gadget)

    host = plugin_module("retiring_host", add_hookspecs)
    user = plugin_module("gadget_user", register_gadgets)
    with pytest.warns(DeprecationWarning, match="register_gadgets is deprecated; use register_widgets") as caught:
        registry = build_registry(host, user, builtins=False, testing=False)
    assert len(caught) == 1
    assert registry.get("gadget", "gadget") is not None, "a deprecated hook still works for its minor release"


def test_the_policy_says_what_is_stable_and_how_it_is_retired() -> None:
    text = POLICY.read_text(encoding="utf-8")
    promises = ("`elspeth.__all__`", "hooks and their arguments", "Settings file keys", "exit codes", "Output formats")
    for promise in promises:
        assert promise in text, f"docs/compatibility.md does not say whether {promise} is stable"
    for mechanism in ("`warn_on_impl`", "`_DEPRECATED`", "`DeprecationWarning`", "one minor release"):
        assert mechanism in text


def test_the_changelog_keeps_a_changelog() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    assert "keepachangelog.com" in text
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert releases[0] == "Unreleased", "the first section of CHANGELOG.md is [Unreleased]"
    assert elspeth.__version__ in releases, f"CHANGELOG.md has no section for {elspeth.__version__}"
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
    for kind in re.findall(r"^### (.+)$", unreleased, re.MULTILINE):
        assert kind in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kind
    assert "compatibility.md" in text
