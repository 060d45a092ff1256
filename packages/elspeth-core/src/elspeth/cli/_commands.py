"""Commands that plugins add to ``elspeth`` through the ``register_commands`` hook, loaded when needed.

A distribution that adds commands names the module implementing ``register_commands`` in the
``elspeth.commands`` entry-point group (the entry point's name is the command's name, for humans)::

    [project.entry-points."elspeth.commands"]
    verify = "elspeth_signed.commands"

Only those modules are imported, and only when a command line needs them: ``elspeth --help`` (which
lists every command) and a command core does not have. ``elspeth run`` and the other core commands
never read entry points for commands, and no plugin's heavy module is imported to list them.
The hook is called through pluggy, one plugin at a time, so a plugin that fails to import or raises
while adding its commands costs only its own commands (with a warning on stderr naming it).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy
import typer
from typer.core import TyperGroup

from elspeth import hookspecs
from elspeth.cli._guard import guarded

try:
    from elspeth.cli._coerce import plain_coercion
except ImportError:  # a typer release without RuntimeParam: its own (pydantic) coercion serves
    plain_coercion = None  # type: ignore[assignment]

__all__ = ["COMMANDS_GROUP", "CommandSource", "PluginCommands", "command_sources", "plugin_commands"]

COMMANDS_GROUP = "elspeth.commands"


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(value: str | None) -> set[str] | None:
    return None if value is None else {_canon(p) for p in value.split(",") if p.strip()}


def _wanted(label: str, distribution: str, disabled: Iterable[str], environ: Mapping[str, str]) -> bool:
    """Whether ``ELSPETH_LOAD_PLUGINS``, ``ELSPETH_DISABLE_PLUGINS`` and ``--disable-plugin`` let it load."""
    keys = {_canon(label), _canon(distribution)}
    allow = _names(environ.get("ELSPETH_LOAD_PLUGINS"))
    block = (_names(environ.get("ELSPETH_DISABLE_PLUGINS")) or set()) | {_canon(n) for n in disabled}
    return (allow is None or bool(keys & allow)) and not keys & block


def _warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


@dataclass(frozen=True)
class CommandSource:
    """A module that implements ``register_commands``: an entry point of ``elspeth.commands`` (or a test's module)."""

    label: str
    distribution: str
    load: Callable[[], object]


def command_sources() -> list[CommandSource]:
    """Every entry point of the ``elspeth.commands`` group, in a stable order (read only when needed)."""
    from importlib import metadata

    return [
        CommandSource(ep.name, ep.dist.name if ep.dist else "?", ep.load)
        for ep in sorted(metadata.entry_points(group=COMMANDS_GROUP), key=lambda e: (e.name, e.value))
    ]


def _load_modules(pm: pluggy.PluginManager, disabled: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    loaded = []
    for source in command_sources():
        if not _wanted(source.label, source.distribution, disabled, environ):
            continue
        key = f"{source.distribution} (entry point '{source.label}')"
        try:
            pm.register(source.load(), name=key)
        except (Exception, SystemExit) as exc:  # a broken plugin costs only its own commands
            _warn(f"commands of {key} not loaded: {type(exc).__name__}: {exc}")
            continue
        loaded.append(key)
    return loaded


def plugin_commands(disabled: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every command the installed plugins add, by name: ``register_commands(cli=...)`` called through pluggy.

    Args:
        disabled: entry-point or distribution names to skip (``--disable-plugin``).
        environ: where to read ``ELSPETH_LOAD_PLUGINS`` and ``ELSPETH_DISABLE_PLUGINS``.

    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    found: dict[str, Any] = {}
    for key in _load_modules(pm, disabled, os.environ if environ is None else environ):
        others = [p for name, p in pm.list_name_plugin() if name != key]
        cli = typer.Typer(rich_markup_mode=None)
        try:
            pm.subset_hook_caller("register_commands", remove_plugins=others)(cli=cli)
            commands = typer.main.get_group(cli).commands if cli.registered_commands or cli.registered_groups else {}
        except (Exception, SystemExit) as exc:
            _warn(f"commands of {key} not added: {type(exc).__name__}: {exc}")
            continue
        for name, command in commands.items():
            if name in found:
                _warn(f"command '{name}' of {key} ignored: another plugin already adds it")
                continue
            found[name] = command
    return found


def _guarded(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` under the CLI's error policy: an Elspeth error is a message and its exit code, not a traceback."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        exits: list[typer.Exit] = []

        def call() -> Any:
            try:
                return callback(*args, **kwargs)
            except typer.Exit as exc:  # a command's own exit code passes through as it is
                exits.append(exc)
                return None

        value = guarded(call)
        if exits:
            raise exits[0]
        return value

    return run


def _guard_all(command: Any) -> None:
    if getattr(command, "callback", None) is not None:
        command.callback = _guarded(command.callback)
    for sub in getattr(command, "commands", {}).values():
        _guard_all(sub)


class PluginCommands(TyperGroup):
    """The root ``elspeth`` group: core's commands, and the plugins' once a command line needs them."""

    _plugins_loaded = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse the root's options; ``--disable-plugin`` and ``--help`` are read without importing pydantic."""
        if plain_coercion is not None:
            plain_coercion(self, ctx)
        return super().parse_args(ctx, args)

    def _load_plugins(self, ctx: Any) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        disabled = list(ctx.params.get("disable_plugin") or [])
        for name, command in plugin_commands(disabled).items():
            if name in self.commands:
                _warn(f"a plugin's command '{name}' is ignored: it is one of elspeth's own commands")
                continue
            _guard_all(command)
            self.add_command(command, name)

    def list_commands(self, ctx: Any) -> list[str]:
        """Core's commands and every plugin's (this is what ``elspeth --help`` lists)."""
        self._load_plugins(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """A core command at once; any other name looks among the plugins' commands."""
        found = super().get_command(ctx, cmd_name)
        if found is None and not self._plugins_loaded:
            self._load_plugins(ctx)
            found = super().get_command(ctx, cmd_name)
        return found
