"""What every contract shares: how the plugin under test is built, and the checks every plugin class passes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from elspeth import Registry, builtin_sources, hookimpl
from elspeth_testing._registry import build_registry, plugin_module

__all__ = ["PluginContract", "run_async"]

T = TypeVar("T")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop, as a run would."""
    return asyncio.run(coro)


class PluginContract:
    """Base of the domain contracts.

    A plugin's test class subclasses the contract of its domain, sets ``plugin_class`` and, if the
    plugin needs options, overrides the ``plugin_options`` fixture. Override the ``plugin`` fixture
    only when the plugin cannot be built as Elspeth builds it, ``plugin_class(Options(**options))``.
    """

    plugin_class: ClassVar[type[Any]]
    """The plugin class under test; every subclass sets it."""
    domain: ClassVar[str] = ""
    hook: ClassVar[str] = ""

    def _class(self) -> type[Any]:
        cls: type[Any] | None = getattr(type(self), "plugin_class", None)
        if cls is None:
            pytest.fail(f"{type(self).__name__} must set `plugin_class = YourPlugin`", pytrace=False)
        return cls

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        """The options the plugin is built with in every contract test (as written under ``options:``)."""
        return {}

    @pytest.fixture
    def plugin(self, plugin_options: dict[str, Any]) -> Any:
        """The plugin under test, built as a run builds it."""
        cls = self._class()
        return cls(cls.Options.model_validate(plugin_options))

    def test_class_has_name_options_and_description(self) -> None:
        """The class carries a lowercase ``name``, a pydantic ``Options`` and a docstring."""
        cls = self._class()
        name = getattr(cls, "name", None)
        assert isinstance(name, str), f"{cls.__name__} needs a class attribute `name` (got {name!r})"
        assert _NAME_RE.match(name), f"plugin name {name!r} must be lowercase letters, digits, '_', '-' or '.'"
        options = getattr(cls, "Options", None)
        assert isinstance(options, type), f"{cls.__name__} needs a nested `Options` class (a pydantic model)"
        assert issubclass(options, BaseModel), f"{cls.__name__}.Options must subclass pydantic.BaseModel"
        doc = (cls.__doc__ or "").strip()
        assert doc, f"{cls.__name__} needs a docstring: its first line is the description in `elspeth plugins list`"

    def test_options_refuse_unknown_keys(self, plugin_options: dict[str, Any]) -> None:
        """A misspelt option is an error, not silently ignored."""
        cls = self._class()
        try:
            cls.Options.model_validate({**plugin_options, "surely_not_an_option": 1})
        except ValidationError as exc:
            kinds = {err["type"] for err in exc.errors()}
        else:
            kinds = set()
        assert "extra_forbidden" in kinds, (
            f"{cls.__name__}.Options accepts unknown keys, so a typo in the settings goes unnoticed; "
            'set `model_config = ConfigDict(extra="forbid")`'
        )

    def plugin_module(self) -> ModuleType:
        """An in-memory plugin module whose registration hook registers ``plugin_class``."""
        cls = self._class()

        def register(register: Any) -> None:
            register(cls)

        return plugin_module(f"contract_{self.domain}", **{self.hook: hookimpl(register)})

    def registry(self, *builtins: str) -> Registry:
        """A registry of the plugin under test, the ``rows`` orchestrator and the named builtin modules.

        Args:
            builtins: labels of core's builtin modules to add: ``datasources``, ``sinks``, ``llm_clients``.

        """
        chosen = [s for s in builtin_sources() if s.label in builtins]
        return build_registry(self.plugin_module(), *chosen, builtins=False)

    def test_registers_through_discovery(self) -> None:
        """Registering the class through its domain's hook gives a working registry entry."""
        cls = self._class()
        registry = build_registry(self.plugin_module(), builtins=False, testing=False)
        broken = [f"{i.name}: {i.error}" for i in registry if i.status != "ok"]
        assert not broken, f"registering {cls.__name__} through `{self.hook}` failed: {broken}"
        info = registry.get(self.domain, cls.name)
        assert info.factory is cls
        assert info.description, "the description (first docstring line) is empty"
