"""Finding plugins: builtins and the ``elspeth`` entry-point group, one at a time.

Nothing a single plugin does can take the others down: an entry point that fails to import (even by
raising ``SystemExit``), a hook implementation that raises or has a bad signature (also for a hook that
another distribution adds later through ``add_hookspecs``), or an implementation of a hook that no
loaded distribution specifies is recorded as a broken entry with its reason. Two plugins that claim
one name in one domain are both marked broken, and the message names both distributions.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, TypeGuard

import pluggy

from elspeth import hookspecs
from elspeth._hooks import Isolation, enable_tracing, guarded, isolated
from elspeth._targets import check_target, options_of
from elspeth.registry import PluginInfo, Registry

__all__ = ["ENTRY_POINT_GROUP", "PluginSource", "builtin_sources", "load_registry"]

ENTRY_POINT_GROUP = "elspeth"
BUILTINS = (
    "datasources",
    "sinks",
    "llm_clients",
    "middleware",
    "controls",
    "cache",
    "executors",
)  # in elspeth.builtins.plugin
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_CONTROL_KINDS = ("rate_limiter", "cost_tracker")


@dataclass
class PluginSource:
    """A module to register, with where it came from.

    Attributes:
        label: the entry point's name (or the builtin module's name).
        distribution: the distribution that provides it.
        version: that distribution's version.
        load: the module itself, or ``"pkg.module"`` (or ``"pkg.module:attribute"``) to import.

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
    return [PluginSource(name, "elspeth-core", version, f"elspeth.builtins.plugin:{name}") for name in BUILTINS]


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


def _is_entry_point(value: object) -> TypeGuard[metadata.EntryPoint]:
    """An entry point, the standard library's or the ``importlib_metadata`` backport's.

    Once a package imports the backport (``distributed`` does), ``metadata.entry_points()`` yields
    the backport's objects, which are not instances of the standard library's class.
    """
    return isinstance(value, metadata.EntryPoint) or (
        isinstance(getattr(value, "group", None), str) and callable(getattr(value, "load", None))
    )


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
        enable_tracing(self.pm)

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
            if _is_entry_point(source.load):
                module = source.load.load()
            elif isinstance(source.load, str):
                module_name, _, attribute = source.load.partition(":")
                module = importlib.import_module(module_name)
                module = getattr(module, attribute) if attribute else module
            else:
                module = source.load
        except (Exception, SystemExit) as exc:  # any failure of third-party import code is that plugin's alone
            self.broken(source, f"import failed: {type(exc).__name__}: {exc}")
            return
        key = f"{source.distribution}:{source.label}"
        plugin = guarded(module, hookspecs.PROJECT, key)
        try:
            self.pm.register(plugin, name=key)
        except (Exception, SystemExit) as exc:  # its historic add_hookspecs runs here too
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            reason = _misfit(exc) if isinstance(exc, pluggy.PluginValidationError) else f"{type(exc).__name__}: {exc}"
            self.broken(source, reason)
            return
        self.sources[key] = source

    def check_specs(self) -> None:
        """Take out, as broken, every plugin implementing a hook that no loaded hookspec defines.

        pluggy's ``check_pending`` finds them, one plugin at a time. A name close to a hookspec's
        (``register_sink``) is a typo and says which spec was meant; otherwise the hook may belong to
        a distribution that is installed but not loaded, and the reason names it.
        """
        # entry points that did not load: one of them may be what would have specified a missing hook
        unloaded = [e for e in self.entries if e.status in ("disabled", "broken")]
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                plugin = exc.plugin
            key = self.pm.get_name(plugin) or ""
            missing = sorted(hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec())
            self.pm.unregister(plugin)
            source = self.sources.pop(key, None)
            if source is not None:
                self.broken(source, _unspecified(missing, source, unloaded, self._spec_names()))

    def _spec_names(self) -> list[str]:
        return [name for name, caller in vars(self.pm.hook).items() if not name.startswith("_") and caller.has_spec()]

    def call_registrations(self) -> None:
        """Call every registration hook once, through pluggy; a plugin whose implementation raised is broken."""
        found: dict[str, list[PluginInfo]] = {key: [] for key in self.sources}
        failed: dict[str, BaseException] = {}
        for hook_name, domain in self.domains.items():
            caller = getattr(self.pm.hook, hook_name, None)
            if caller is None:
                continue
            with isolated((Exception, SystemExit)) as state:  # a raising hook breaks only its plugin
                caller(register=self._registrar(domain, state, found))
            for key, exc in state.failures:
                failed.setdefault(key, exc)
        for key, source in self.sources.items():
            if key in failed:
                exc = failed[key]
                self.broken(source, f"{type(exc).__name__} while registering: {exc}")
            else:
                self.entries.extend(found[key])

    def _registrar(self, domain: str, state: Isolation, found: dict[str, list[PluginInfo]]) -> Any:
        def register(
            plugin: type[Any] | str,
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
            lazy = isinstance(plugin, str)
            if isinstance(plugin, str):
                plugin_name: object = check_target(plugin, domain, name)
            else:
                plugin_name = name or getattr(plugin, "name", None)
            if not isinstance(plugin_name, str) or not _NAME_RE.match(plugin_name):
                raise ValueError(f"{plugin!r} needs a lowercase name (got {plugin_name!r})")
            options = None if lazy else options_of(plugin, domain, plugin_name)
            doc = description or ("" if lazy else ((plugin.__doc__ or "").strip().splitlines() or [""])[0])
            key = state.current or ""
            if key not in found:  # called outside a registration hook (kept for later): nobody to credit
                raise RuntimeError(f"register() for {domain} '{plugin_name}' was called outside its registration hook")
            source = self.sources[key]
            found[key].append(
                PluginInfo(
                    name=plugin_name,
                    domain=target,
                    factory=None if isinstance(plugin, str) else plugin,
                    options=options,
                    description=doc,
                    distribution=source.distribution,
                    version=source.version,
                    entry_point=source.label,
                    target=plugin if isinstance(plugin, str) else None,
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


def _unspecified(
    missing: Sequence[str], source: PluginSource, unloaded: Sequence[PluginInfo], specs: Sequence[str]
) -> str:
    """Why a plugin implementing hooks nobody specified is broken, and what to do about it.

    A name within a typo of a loaded hookspec's is reported as that typo, blaming nobody else. Else the
    hook is usually specified by a distribution that is installed but was not loaded (disabled, or
    broken itself); that is said apart from one that is not installed at all.
    """
    hooks = ", ".join(missing)
    typos = {name: difflib.get_close_matches(name, specs, n=1, cutoff=0.85) for name in missing}
    if all(typos.values()):
        meant = ", ".join(f"{name} (did you mean {close[0]}?)" for name, close in typos.items())
        return f"implements {meant}, which no hookspec defines; a hook implementation is named exactly as its hookspec"
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
