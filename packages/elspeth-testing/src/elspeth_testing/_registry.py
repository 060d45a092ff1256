"""Building a plugin registry from plugin modules, the way discovery builds it from entry points."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

from elspeth import PluginSource, Registry, load_registry

__all__ = ["build_registry", "plugin_module"]

TESTING_MODULE = "elspeth_testing.rows"


def _own_version() -> str:
    try:
        return metadata.version("elspeth-testing")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def plugin_module(name: str, *hooks: Callable[..., Any], **attributes: Any) -> types.ModuleType:
    """An in-memory plugin module holding ``hooks`` (``@hookimpl`` functions) and ``attributes``.

    Example::

        @hookimpl
        def register_sinks(register):
            register(MySink)

        registry = build_registry(plugin_module("my_sinks", register_sinks))

    """
    module = types.ModuleType(name)
    for hook in hooks:
        setattr(module, hook.__name__, hook)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _source(plugin: types.ModuleType | str | PluginSource, distribution: str, version: str) -> PluginSource:
    if isinstance(plugin, PluginSource):
        return plugin
    label = plugin if isinstance(plugin, str) else plugin.__name__
    return PluginSource(label.rsplit(".", 1)[-1], distribution, version, plugin)


def build_registry(
    *plugins: types.ModuleType | str | PluginSource,
    builtins: bool = True,
    testing: bool = True,
    distribution: str = "test-plugins",
    version: str = "0.0.0",
    disabled: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Registry:
    """A :class:`~elspeth.Registry` of ``plugins``, loaded through Elspeth's own discovery.

    Installed entry points are never read, so a test sees exactly the plugins it names.

    Args:
        plugins: plugin modules, importable module names, or :class:`~elspeth.discovery.PluginSource`
            objects (to set the entry-point label and distribution of each).
        builtins: also register core's builtin plugins (``csv``, ``jsonl``, ``mock``, ...).
        testing: also register the ``rows`` orchestrator from :mod:`elspeth_testing.rows`.
        distribution: the distribution name given to modules passed without a ``PluginSource``.
        version: that distribution's version.
        disabled: entry-point or distribution names to skip, as ``--disable-plugin`` does.
        environ: where to read ``ELSPETH_LOAD_PLUGINS``/``ELSPETH_DISABLE_PLUGINS``; empty by default,
            so the test's own environment never changes what loads.

    """
    sources = [_source(p, distribution, version) for p in plugins]
    if testing:
        sources.append(PluginSource("rows", "elspeth-testing", _own_version(), TESTING_MODULE))
    return load_registry(
        sources=sources,
        include_builtins=builtins,
        disabled=disabled,
        environ={} if environ is None else environ,
    )
