"""Looking after the processor plugins the batch orchestrator runs itself (its ``post_processors``).

Core opens, closes and summarises the settings' processors; plugins named in the orchestrator's own
options are the orchestrator's to look after in the same way.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from elspeth import RunFailed, invoke

if TYPE_CHECKING:
    from elspeth import PluginContext

__all__ = ["close_all", "keyed", "open_all", "summaries"]

log = logging.getLogger("elspeth.batch")

Plugins = Sequence[tuple[str, Any]]


def keyed(plugins: Plugins) -> list[tuple[str, Any]]:
    """Each plugin with its metadata key: its name, or ``name[i]`` (its place in the list) when listed twice."""
    listed = Counter(name for name, _ in plugins)
    return [(f"{name}[{i}]" if listed[name] > 1 else name, plugin) for i, (name, plugin) in enumerate(plugins)]


async def open_all(plugins: Plugins, ctx: PluginContext, label: str, option: str) -> None:
    """Open every plugin that has ``open``; one that cannot stops the run, naming it and its place.

    Args:
        plugins: ``(name, plugin)`` in the order of the option's list.
        ctx: handed to each ``open``.
        label: what the plugins are, for the message (``post-processor``).
        option: the orchestrator option listing them (``post_processors``).

    Raises:
        RunFailed: a plugin's ``open`` raised; those opened before it are closed again.

    """
    for i, (name, plugin) in enumerate(plugins):
        opener = getattr(plugin, "open", None)
        if opener is None:
            continue
        try:
            await invoke(opener, ctx)
        except Exception as exc:  # name the plugin and its place, after closing those already open
            await close_all(plugins[:i])
            raise RunFailed(
                f"{label} '{name}' (orchestrator.options.{option}[{i}]) could not open: {type(exc).__name__}: {exc}"
            ) from exc


async def close_all(plugins: Plugins) -> None:
    """Close every plugin that has ``aclose`` or ``close``; a failure to close is logged, not raised."""
    for name, plugin in plugins:
        closer = getattr(plugin, "aclose", None) or getattr(plugin, "close", None)
        if closer is None:
            continue
        try:
            await invoke(closer)
        except Exception as exc:  # closing is best effort; say so rather than lose the run
            log.warning("'%s' failed to close: %s", name, exc)


async def summaries(plugins: Plugins) -> dict[str, dict[str, Any]]:
    """Each plugin's ``summary()``, keyed as :func:`keyed` says."""
    return {key: dict(await invoke(p.summary)) for key, p in keyed(plugins) if hasattr(p, "summary")}
