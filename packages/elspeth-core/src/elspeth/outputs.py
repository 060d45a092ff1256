"""The files a run reads and writes, checked before any row: no output may destroy an input.

Plugins declare their files. A plugin that writes files (every file sink, the audit trail, a rejects
file) has ``output_paths(ctx)``; one that reads files (a datasource, a schema, a cache) has
``input_paths(ctx)``. Each returns :class:`DeclaredPath` items naming the option that gave the path,
so a refusal names the setting and its line. :func:`check_files` then refuses, before the first row,
an output that is (through symlinks, ``..``, hard links or a case-insensitive file system) something
the run reads, an existing thing that is not a regular file (a device, FIFO, socket or folder),
two outputs that are the same file, or a file outside ``output_dir``; and an ``output_dir`` that
cannot be written.

Example (a sink)::

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        return [DeclaredPath("path", output_target(ctx, self.options.path))]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from elspeth.files import file_kind

if TYPE_CHECKING:
    from elspeth.config._yaml import Checker, Loc
    from elspeth.config.settings import LoadedSettings
    from elspeth.orchestration.context import PluginContext
    from elspeth.registry import Resolved
    from elspeth.resume import RunOptions

__all__ = [
    "DeclaredPath",
    "ReadsFiles",
    "WritesFiles",
    "check_files",
    "output_target",
    "same_file",
]


class DeclaredPath(NamedTuple):
    """A file a plugin reads or writes, with the option that named it (``path``, ``failures_path``)."""

    option: str
    path: Path


@runtime_checkable
class WritesFiles(Protocol):
    """A plugin that writes local files declares them, so the run can refuse one that destroys an input."""

    def output_paths(self, ctx: PluginContext) -> Sequence[DeclaredPath]:
        """Every file this plugin will write, resolved (nothing is created)."""
        ...


@runtime_checkable
class ReadsFiles(Protocol):
    """A plugin that reads local files declares them, so that no output of the run may replace one."""

    def input_paths(self, ctx: PluginContext) -> Sequence[DeclaredPath]:
        """Every file this plugin will read, resolved."""
        ...


def output_target(ctx: PluginContext, path: str | Path) -> Path:
    """``path`` resolved against the output folder, as a sink will write it; nothing is created."""
    return (ctx.output_dir / path).resolve()


def _folds_case(folder: Path) -> bool:
    """Whether ``folder``'s file system ignores case (macOS, Windows): its name swapped in case is itself."""
    swapped = folder.with_name(folder.name.swapcase())
    if not folder.name or swapped == folder:
        return False
    try:
        return os.path.samefile(folder, swapped)
    except OSError:
        return False


def same_file(a: Path, b: Path) -> bool:
    """Whether two resolved paths name one file: the same inode when both exist, else the same spelling.

    On a case-insensitive file system two spellings differing only in case are the same file.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        pass
    if a == b:
        return True
    return str(a).casefold() == str(b).casefold() and _folds_case(a.parent)


def _clashes(out: Path, used: Path) -> bool:
    """``out`` is ``used``, or lies inside ``used`` when that is a folder (a corpus, say)."""
    return same_file(out, used) or (used.is_dir() and out.is_relative_to(used))


class _Use(NamedTuple):
    loc: Loc
    label: str
    path: Path


def _declared(
    plugins: Iterable[tuple[Resolved | None, Any]], ctx: PluginContext, kind: type, checker: Checker
) -> list[_Use]:
    method = "output_paths" if kind is WritesFiles else "input_paths"
    uses: list[_Use] = []
    for resolved, obj in plugins:
        if resolved is None or not isinstance(obj, kind):
            continue
        label = f"{resolved.info.domain} '{resolved.info.name}'"
        try:
            declared = list(getattr(obj, method)(ctx))
        except ValueError as exc:  # a path the operating system refuses: an embedded NUL byte
            checker.add((*resolved.loc, "options"), f"{label} names a path no file can have: {exc}")
            continue
        for option, path in declared:
            if "\0" in str(path):
                checker.add((*resolved.loc, "options", option), f"{label} names a path with a NUL byte")
                continue
            uses.append(_Use((*resolved.loc, "options", option), label, Path(path)))
    return uses


def _which(checker: Checker, use: _Use, verb: str) -> str:
    """``datasource 'csv' reads (line 6)``, ``is the settings file``."""
    line = checker.source_map.lines.get(use.loc) if use.loc else None
    what = f"is {use.label}" if use.label.startswith("the ") else f"{use.label} {verb}"
    return what + (f" (line {line})" if line else "")


def _check_output_dir(loaded: LoadedSettings, checker: Checker) -> None:
    folder = loaded.output_dir
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        checker.add(("output_dir",), f"{existing} is not a folder, so {folder} cannot be made; fix output_dir")
        return
    problem = None
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        problem = "read-only file system"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = "permission denied"
    if problem is not None:
        what = "write into" if existing == folder else f"create {folder} in"
        checker.add(("output_dir",), f"cannot {what} {existing} ({problem}); set output_dir to a folder you can write")


def check_files(
    loaded: LoadedSettings,
    ctx: PluginContext,
    options: RunOptions,
    checker: Checker,
    plugins: Iterable[tuple[Resolved | None, Any]],
) -> None:
    """Record a problem for every declared output that would destroy an input or is not a regular file.

    The inputs are the settings file, the run store (when the run records), and every file a plugin
    declares it reads; the outputs every file a plugin declares it writes, each of which must lie in
    ``output_dir`` (symlinks resolved). ``output_dir`` must be a folder the run can write (or create).
    """
    from elspeth.resume import store_path

    plugins = list(plugins)
    _check_output_dir(loaded, checker)
    inputs = _declared(plugins, ctx, ReadsFiles, checker)
    if loaded.path is not None:
        inputs.append(_Use((), "the settings file", loaded.path.resolve()))
    if options.record and loaded.settings.store.enabled and loaded.settings.store.url is None:
        inputs.append(_Use(("store", "path"), "the run store", store_path(loaded)))
    written: list[_Use] = []
    folder = loaded.output_dir
    for out in _declared(plugins, ctx, WritesFiles, checker):
        kind = file_kind(out.path)
        clash = next((use for use in [*inputs, *written] if _clashes(out.path, use.path)), None)
        if kind is not None:
            checker.add(out.loc, f"{out.label} would replace {out.path}, a {kind}, not a regular file; name a file")
        elif clash is not None:
            which = _which(checker, clash, "reads" if clash in inputs else "also writes")
            checker.add(out.loc, f"{out.label} would overwrite {out.path}, which {which}; write it somewhere else")
        elif not out.path.is_relative_to(folder):
            checker.add(
                out.loc,
                f"{out.label} would write {out.path}, outside output_dir {folder}; a run writes only in its "
                "output folder: give a path inside it (or change output_dir)",
            )
        written.append(out)
