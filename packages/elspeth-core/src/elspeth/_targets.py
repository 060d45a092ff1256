"""Lazy plugin registrations: ``register("pkg.module:Class", name=..., description=...)``.

A registration by reference names the class without importing it, so ``elspeth plugins list`` does
not import plugin modules or build their pydantic ``Options`` models. The class is imported the first
time a plugin is used (``plugins show``, ``validate``, a run); if that import fails, or what it finds
is not a plugin class, the entry becomes broken with the reason and the reference.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth.registry import PluginInfo

__all__ = ["check_target", "load_info", "options_of"]

_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_target(target: str, domain: str, name: str | None) -> str:
    """The plugin name of a registration by reference, after checking the reference's shape.

    Raises:
        ValueError: ``target`` is not ``"package.module:Class"``, or ``name=`` is missing.

    """
    if not _TARGET_RE.match(target):
        raise ValueError(f"{domain} reference {target!r} must look like 'package.module:Class'")
    if name is None:
        raise ValueError(f"{domain} reference {target!r} needs name= (the class is not imported to read it)")
    return name


def options_of(plugin: Any, domain: str, name: str) -> Any:
    """``plugin.Options``, checked to be a pydantic model.

    Raises:
        TypeError: the plugin has no ``Options`` class, or it is not a pydantic ``BaseModel``.

    """
    from pydantic import BaseModel

    options = getattr(plugin, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise TypeError(f"{domain} '{name}' needs an Options class that is a pydantic BaseModel")
    return options


def _import(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def load_info(info: PluginInfo) -> PluginInfo:
    """``info`` with its referenced class imported, or the same entry marked broken with the reason."""
    assert info.target is not None
    try:
        plugin = _import(info.target)
        options = options_of(plugin, info.domain, info.name)
    except (Exception, SystemExit) as exc:  # third-party import code: its failure is that plugin's alone
        reason = f"importing {info.target} failed: {type(exc).__name__}: {exc}"
        return dataclasses.replace(info, status="broken", error=reason)
    description = info.description or ((plugin.__doc__ or "").strip().splitlines() or [""])[0]
    return dataclasses.replace(info, factory=plugin, options=options, description=description)
