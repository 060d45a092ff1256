"""Finding plugins: builtins and the ``elspeth`` entry-point group, one at a time.

Nothing a single plugin does can take the others down: an entry point that fails to import (even by
raising ``SystemExit``), a hook implementation that raises or has a bad signature (also for a hook that
another distribution adds later through ``add_hookspecs``), or an implementation of a hook that no
loaded distribution specifies is recorded as a broken entry with its reason. Two plugins that claim
one name in one domain are both marked broken, and the message names both distributions.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from elspeth import _trace, hookspecs
from elspeth.registry import PluginInfo, Registry

__all__ = ["ENTRY_POINT_GROUP", "PluginSource", "builtin_sources", "load_registry"]

ENTRY_POINT_GROUP = "elspeth"
BUILTIN_MODULES = (
    "elspeth.builtins.datasources",
    "elspeth.builtins.sinks",
    "elspeth.builtins.llm_clients",
    "elspeth.builtins.middleware",
    "elspeth.builtins.controls",
    "elspeth.builtins.cache",
)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_CONTROL_KINDS = ("rate_limiter", "cost_tracker")


@dataclass
class PluginSource:
    """A module to register, with where it came from.

    Attributes:
        label: the entry point's name (or the builtin module's name).
        distribution: the distribution that provides it.
        version: that distribution's version.
        load: the module itself, or ``"pkg.module"`` to import.

    """

    label: str
    distribution: str
    version: str
    load: ModuleType | str | metadata.EntryPoint


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_version() -> str:
    try:
        return metadata.version("elspeth-core")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def builtin_sources() -> list[PluginSource]:
    """Core's own plugin modules, registered through the same path as external plugins."""
    version = _core_version()
    return [PluginSource(name.rsplit(".", 1)[-1], "elspeth-core", version, name) for name in BUILTIN_MODULES]


def _selected(names: Iterable[str], source: PluginSource) -> bool:
    wanted = {_canon(n) for n in names if n.strip()}
    return _canon(source.label) in wanted or _canon(source.distribution) in wanted


def entry_point_sources() -> list[PluginSource]:
    """Every entry point in the ``elspeth`` group, in a stable order."""
    sources = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        dist = ep.dist
        sources.append(PluginSource(ep.name, dist.name if dist else "?", dist.version if dist else "?", ep))
    return sources


def _split_env(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class _Loader:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.domains: dict[str, str] = dict(hookspecs.CORE_DOMAINS)
        self.entries: list[PluginInfo] = []
        self.sources: dict[str, PluginSource] = {}
        self.pm.hook.add_hookspecs.call_historic(kwargs={"add": self._add_hookspecs})
        if _trace.enabled():
            self.pm.trace.root.setwriter(lambda text: sys.stderr.write(f"[elspeth trace] {text}"))
            self.pm.enable_tracing()

    def _add_hookspecs(self, module: ModuleType | type, /, *, domains: Mapping[str, str] | None = None) -> None:
        self._eject_misfits(module)
        self.pm.add_hookspecs(module)
        for hook_name, domain in (domains or {}).items():
            if not hasattr(module, hook_name):
                raise ValueError(f"add_hookspecs: {module.__name__} has no hookspec '{hook_name}'")
            self.domains[hook_name] = domain

    def _eject_misfits(self, module: ModuleType | type) -> None:
        """Unregister, as broken, every loaded plugin whose implementation of a hook in ``module`` misfits its spec.

        pluggy checks implementations registered before their spec inside ``add_hookspecs`` and raises
        there, which would blame the distribution adding the specs (and drop its domains) for another
        plugin's bad signature. So each such plugin is first tried against the new specs in a throwaway
        manager; a plugin that fails there is the one taken out, with pluggy's reason.
        """
        probe = pluggy.PluginManager(hookspecs.PROJECT)
        probe.add_hookspecs(module)
        suspects: dict[str, object] = {}
        for hook_name in dir(module):
            if probe.parse_hookspec_opts(module, hook_name) is None:
                continue
            caller = getattr(self.pm.hook, hook_name, None)
            if caller is None or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                # only plugins already fully registered: a host implementing its own hook badly is its own fault
                if impl.plugin_name in self.sources:
                    suspects[impl.plugin_name] = impl.plugin
        for key, plugin in suspects.items():
            try:
                with warnings.catch_warnings():  # pluggy warns again, for real, in add_hookspecs
                    warnings.simplefilter("ignore")
                    probe.register(plugin, name=key)
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(plugin)
                self.broken(self.sources.pop(key), _misfit(exc))

    def broken(self, source: PluginSource, reason: str, status: str = "broken") -> None:
        self.entries.append(
            PluginInfo(
                name=source.label,
                domain="",
                factory=None,
                options=None,
                description="",
                distribution=source.distribution,
                version=source.version,
                entry_point=source.label,
                status=status,  # type: ignore[arg-type]
                error=reason,
            )
        )

    def register(self, source: PluginSource) -> None:
        try:
            if isinstance(source.load, metadata.EntryPoint):
                module = source.load.load()
            elif isinstance(source.load, str):
                module = importlib.import_module(source.load)
            else:
                module = source.load
        except (Exception, SystemExit) as exc:  # any failure of third-party import code is that plugin's alone
            self.broken(source, f"import failed: {type(exc).__name__}: {exc}")
            return
        key = f"{source.distribution}:{source.label}"
        try:
            self.pm.register(module, name=key)
        except (Exception, SystemExit) as exc:  # its historic add_hookspecs runs here too
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            reason = _misfit(exc) if isinstance(exc, pluggy.PluginValidationError) else f"{type(exc).__name__}: {exc}"
            self.broken(source, reason)
            return
        self.sources[key] = source

    def check_specs(self) -> None:
        # entry points that did not load: one of them may be what would have specified a missing hook
        unloaded = [e for e in self.entries if e.status in ("disabled", "broken")]
        for key, source in list(self.sources.items()):
            plugin = self.pm.get_plugin(key)
            missing = [hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec()]
            if missing:
                self.pm.unregister(plugin)
                del self.sources[key]
                self.broken(source, _unspecified(sorted(missing), source, unloaded))

    def call_registrations(self) -> None:
        for key, source in self.sources.items():
            plugin = self.pm.get_plugin(key)
            found: list[PluginInfo] = []
            try:
                for hook_name, domain in self.domains.items():
                    caller = getattr(self.pm.hook, hook_name, None)
                    if caller is None:
                        continue
                    for impl in caller.get_hookimpls():
                        if impl.plugin is plugin:
                            registrar = self._registrar(source, domain, found)
                            kwargs = {"register": registrar}
                            _trace.hook_call(hook_name, key, kwargs)
                            impl.function(**{a: kwargs[a] for a in impl.argnames if a in kwargs})
            except (Exception, SystemExit) as exc:  # a raising hook breaks only this plugin, whatever it raises
                self.broken(source, f"{type(exc).__name__} while registering: {exc}")
                continue
            self.entries.extend(found)

    def _registrar(self, source: PluginSource, domain: str, found: list[PluginInfo]) -> Any:
        def register(
            plugin: type[Any],
            /,
            *,
            name: str | None = None,
            description: str | None = None,
            kind: str | None = None,
        ) -> None:
            target = domain
            if domain == "controls":
                if kind not in _CONTROL_KINDS:
                    raise ValueError(f"register_controls needs kind= one of {', '.join(_CONTROL_KINDS)}, got {kind!r}")
                target = kind
            elif kind is not None:
                raise TypeError(f"kind= is only for register_controls, not the {domain} registrar")
            plugin_name = name or getattr(plugin, "name", None)
            if not isinstance(plugin_name, str) or not _NAME_RE.match(plugin_name):
                raise ValueError(f"{plugin!r} needs a lowercase name (got {plugin_name!r})")
            options = getattr(plugin, "Options", None)
            if not (isinstance(options, type) and issubclass(options, BaseModel)):
                raise TypeError(f"{domain} '{plugin_name}' needs an Options class that is a pydantic BaseModel")
            doc = description or (plugin.__doc__ or "").strip().splitlines()[0:1]
            found.append(
                PluginInfo(
                    name=plugin_name,
                    domain=target,
                    factory=plugin,
                    options=options,
                    description=doc if isinstance(doc, str) else (doc[0] if doc else ""),
                    distribution=source.distribution,
                    version=source.version,
                    entry_point=source.label,
                )
            )

        return register

    def mark_conflicts(self) -> None:
        by_key: dict[tuple[str, str], list[int]] = {}
        for i, info in enumerate(self.entries):
            if info.domain and info.status == "ok":
                by_key.setdefault((info.domain, info.name), []).append(i)
        for (domain, name), indexes in by_key.items():
            if len(indexes) < 2:
                continue
            claimants = [self.entries[i] for i in indexes]
            owners = " and ".join(f"{c.distribution} {c.version} (entry point '{c.entry_point}')" for c in claimants)
            reason = f"{domain} name '{name}' is claimed by both {owners}; uninstall or disable one"
            for i in indexes:
                old = self.entries[i]
                self.entries[i] = PluginInfo(**{**old.__dict__, "status": "broken", "error": reason})


def _misfit(exc: pluggy.PluginValidationError) -> str:
    """The reason pluggy gave for refusing a hook implementation, on one line."""
    detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"a hook does not match its spec: {detail}"


def _requirements(distribution: str) -> set[str]:
    """The canonical names of what ``distribution`` requires (extras included), or nothing if unknown."""
    try:
        requires = metadata.requires(distribution) or []
    except (metadata.PackageNotFoundError, ValueError):
        return set()
    names = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req.strip()) for req in requires)
    return {_canon(m.group(0)) for m in names if m}


def _unspecified(missing: Sequence[str], source: PluginSource, unloaded: Sequence[PluginInfo]) -> str:
    """Why a plugin implementing hooks nobody specified is broken, and what to do about it.

    A hook is usually specified by a distribution that is installed but was not loaded (disabled, or
    broken itself); that is said apart from one that is not installed at all.
    """
    hooks = ", ".join(missing)
    others: dict[str, PluginInfo] = {}
    for info in unloaded:
        if _canon(info.distribution) != _canon(source.distribution):
            others.setdefault(_canon(info.distribution), info)
    required = _requirements(source.distribution)
    likely = [info for name, info in others.items() if name in required]
    narrowed = bool(likely)
    likely = likely or list(others.values())
    if not likely:
        return (
            f"implements {hooks}, which no installed distribution specifies "
            "(is the distribution that defines it installed?)"
        )
    shown = 3
    names = ", ".join(f"{i.distribution} ({i.status}: {i.error})" for i in likely[:shown])
    if len(likely) > shown:
        names += f" and {len(likely) - shown} more (see `elspeth plugins list`)"
    unsure = "" if narrowed else "; if none of them does, is the distribution that defines it installed?"
    return (
        f"implements {hooks}, which no loaded distribution specifies; installed but not loaded: {names}. "
        f"Enable the one that defines it, or disable '{source.label}' too{unsure}"
    )


def load_registry(
    *,
    disabled: Sequence[str] = (),
    sources: Sequence[PluginSource] | None = None,
    include_builtins: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Registry:
    """Find and register every plugin, recording each failure on its own.

    Args:
        disabled: entry-point or distribution names to skip (``--disable-plugin``).
        sources: plugin modules to use instead of the ``elspeth`` entry points (tests).
        include_builtins: register core's builtin plugins.
        environ: where to read ``ELSPETH_LOAD_PLUGINS`` and ``ELSPETH_DISABLE_PLUGINS``.

    ``ELSPETH_LOAD_PLUGINS`` is an allowlist of entry-point or distribution names (set but empty:
    builtins only); ``ELSPETH_DISABLE_PLUGINS`` and ``disabled`` are blocklists.

    """
    env = os.environ if environ is None else environ
    allow = _split_env(env.get("ELSPETH_LOAD_PLUGINS"))
    block = [*(_split_env(env.get("ELSPETH_DISABLE_PLUGINS")) or []), *disabled]
    loader = _Loader()
    chosen: list[PluginSource] = builtin_sources() if include_builtins else []
    for source in entry_point_sources() if sources is None else sources:
        if allow is not None and not _selected(allow, source):
            loader.broken(source, "not in ELSPETH_LOAD_PLUGINS", status="disabled")
        elif _selected(block, source):
            loader.broken(source, "disabled by --disable-plugin / ELSPETH_DISABLE_PLUGINS", status="disabled")
        else:
            chosen.append(source)
    for source in chosen:
        loader.register(source)
    loader.check_specs()
    loader.call_registrations()
    loader.mark_conflicts()
    return Registry(loader.entries, loader.pm)
