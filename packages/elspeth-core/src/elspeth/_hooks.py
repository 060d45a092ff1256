"""Calling hooks through pluggy while keeping each plugin's failure its own.

Every hook is called as pluggy documents it (``pm.hook.<name>(**kwargs)``), so ``tryfirst``,
``trylast``, ``specname`` and ``wrapper=True``/``hookwrapper=True`` mean what pluggy says, and
``ELSPETH_TRACE`` is pluggy's own tracing. pluggy stops a call at the first implementation that
raises; Elspeth needs the others to run (one broken plugin must not hide the rest at registration,
and an observer's bug must not fail a row). So, when a plugin is registered, each of its plain
(non-wrapper) implementations is wrapped (:func:`guarded`): inside :func:`isolated` a
raising implementation is recorded under its plugin's name and returns None, and pluggy goes on with
the next one. Outside :func:`isolated` the wrapper only passes the call through. A wrapper's own
exception (before or after its ``yield``) ends the call as pluggy says; :func:`call_observers`
records it too.
"""

from __future__ import annotations

import functools
import logging
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pluggy

from elspeth import _trace

__all__ = ["Isolation", "call_observers", "enable_tracing", "guarded", "isolated"]

log = logging.getLogger("elspeth")


@dataclass
class Isolation:
    """One isolated hook call: what each implementation raised, and whose implementation runs now.

    Attributes:
        catch: the exceptions kept from propagating.
        failures: ``(plugin name, exception)`` for each implementation that raised, in call order.
        current: the name of the plugin whose implementation is running (registration reads it).

    """

    catch: tuple[type[BaseException], ...]
    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    current: str | None = None


_active: ContextVar[Isolation | None] = ContextVar("elspeth_hook_isolation", default=None)


@contextmanager
def isolated(catch: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[Isolation]:
    """Within this block, a guarded implementation that raises one of ``catch`` is recorded, not raised."""
    state = Isolation(catch)
    token = _active.set(state)
    try:
        yield state
    finally:
        _active.reset(token)


def _guarded(function: Callable[..., Any], plugin_name: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        state = _active.get()
        if state is None:
            return function(*args)
        outer, state.current = state.current, plugin_name
        try:
            return function(*args)
        except state.catch as exc:  # this implementation's failure is its plugin's alone; pluggy goes on
            state.failures.append((plugin_name, exc))
            return None
        finally:
            state.current = outer

    return call


def guarded(plugin: object, project: str, name: str) -> object:
    """What to register, as ``name``, in place of ``plugin``: a module whose plain hook implementations are guarded.

    Each function carrying pluggy's ``<project>_impl`` marker is wrapped (see the module's docstring);
    ``functools.wraps`` keeps the marker and the signature pluggy reads. Wrappers (generator
    functions) are kept as they are. Only pluggy's public API sees the result.
    """
    proxy = types.ModuleType(getattr(plugin, "__name__", type(plugin).__name__))
    proxy.__doc__ = getattr(plugin, "__doc__", None)
    marker = f"{project}_impl"
    for attr in dir(plugin):
        value = getattr(plugin, attr, None)
        opts = getattr(value, marker, None)
        if opts is None or not callable(value):
            continue
        is_wrapper = opts.get("wrapper") or opts.get("hookwrapper")
        setattr(proxy, attr, value if is_wrapper else _guarded(value, name))
    return proxy


_TRACED: weakref.WeakSet[pluggy.PluginManager] = weakref.WeakSet()  # managers whose calls are traced


def enable_tracing(pm: pluggy.PluginManager) -> None:
    """With ``ELSPETH_TRACE`` set, print every hook call and its result to stderr through pluggy's tracing."""
    if _trace.enabled():
        pm.trace.root.setwriter(lambda text: sys.stderr.write(f"[elspeth trace] {text}"))
        pm.enable_tracing()
        _TRACED.add(pm)


def _blame(caller: pluggy.HookCaller, exc: BaseException) -> str:
    """The plugin whose implementation (a wrapper: plain ones are guarded) raised ``exc``, from its traceback."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in caller.get_hookimpls()}
    found = "a hook wrapper"
    tb = exc.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def call_observers(pm: pluggy.PluginManager, hook_name: str, warnings: list[str], **kwargs: Any) -> None:
    """Call an observer hook through pluggy; each failure becomes a warning in ``warnings`` (the run's metadata's).

    Neither an implementation that raises nor a wrapper that raises fails the row or the run: the
    first is skipped (the others still run), the second ends the call as pluggy says. Both are logged.
    """
    caller = getattr(pm.hook, hook_name)
    if not caller.get_hookimpls() and pm not in _TRACED:
        return  # nothing to call, nothing to trace: a row's hooks cost nothing when nobody observes
    with isolated() as state:
        try:
            caller(**kwargs)
        except Exception as exc:  # a hook wrapper's own failure: the call ended there, the run goes on
            state.failures.append((_blame(caller, exc), exc))
    for plugin_name, error in state.failures:
        message = f"{hook_name} observer {plugin_name} raised {type(error).__name__}: {error}"
        log.warning(message)
        warnings.append(message)
