"""Looking after the plugins an orchestrator builds from its own options.

Core opens, closes and summarises the plugins of the settings' top-level lists (processors, utilities,
middleware, ...). Plugins named in an orchestrator's own options (the batch orchestrator's
``post_processors``, the validation orchestrator's ``rules``) are the orchestrator's to look after in
the same way; these helpers do it the way core does.

Example::

    plugins = [(ref.plugin, ctx.build(...)) for ref in self.options.post_processors]
    await open_plugins(plugins, ctx.plugin_context, label="post-processor", option="post_processors")
    try:
        ...  # the rows
        counted = await plugin_summaries(plugins)  # {"pii_redaction": {...}}
    finally:
        await close_plugins(plugins)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from elspeth._sync import invoke
from elspeth.errors import RunFailed

if TYPE_CHECKING:
    from elspeth.orchestration.context import PluginContext

__all__ = ["close_plugins", "keyed_plugins", "open_plugins", "plugin_summaries"]

log = logging.getLogger("elspeth.orchestration")

Plugins = Sequence[tuple[str, Any]]


def keyed_plugins(plugins: Plugins) -> list[tuple[str, Any]]:
    """Each plugin with its metadata key: its name, or ``name[i]`` (its place in the list) when listed twice."""
    listed = Counter(name for name, _ in plugins)
    return [(f"{name}[{i}]" if listed[name] > 1 else name, plugin) for i, (name, plugin) in enumerate(plugins)]


async def open_plugins(plugins: Plugins, ctx: PluginContext, *, label: str, option: str) -> None:
    """Open every plugin that has ``open`` (sync or async); one that cannot stops the run, naming it and its place.

    Args:
        plugins: ``(name, plugin)`` in the order of the option's list.
        ctx: handed to each ``open``.
        label: what the plugins are, for the message (``post-processor``, ``rule``).
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
            await close_plugins(plugins[:i])
            raise RunFailed(
                f"{label} '{name}' (orchestrator.options.{option}[{i}]) could not open: {type(exc).__name__}: {exc}"
            ) from exc


async def close_plugins(plugins: Plugins, *, label: str = "", logger: logging.Logger | None = None) -> None:
    """Close every plugin that has ``aclose`` or ``close``; a failure to close is logged, not raised.

    Args:
        plugins: ``(name, plugin)`` pairs.
        label: what the plugins are, put before the name in the warning (``processor 'x' failed to close``).
        logger: where the warning goes (default ``elspeth.orchestration``).

    """
    prefix = f"{label} " if label else ""
    for name, plugin in plugins:
        closer = getattr(plugin, "aclose", None) or getattr(plugin, "close", None)
        if closer is None:
            continue
        try:
            await invoke(closer)
        except Exception as exc:  # closing is best effort; say so rather than lose the run
            (logger or log).warning("%s'%s' failed to close: %s", prefix, name, exc)


async def plugin_summaries(plugins: Plugins) -> dict[str, dict[str, Any]]:
    """Each plugin's ``summary()`` (sync or async), keyed as :func:`keyed_plugins` says."""
    return {key: dict(await invoke(p.summary)) for key, p in keyed_plugins(plugins) if hasattr(p, "summary")}
