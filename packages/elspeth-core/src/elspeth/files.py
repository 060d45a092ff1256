"""Writing a run's files: atomically, as JSON without NaN, and a result as JSON Lines.

Host code (the run store, the sinks, plugins through ``elspeth.write_atomically``, ``elspeth.to_json``
and ``elspeth.jsonl_lines``) shares these, so every copy of a run's rows has one shape.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from elspeth.errors import ElspethError

if TYPE_CHECKING:
    from elspeth.datatypes import RunResult

__all__ = ["DiskFull", "disk_full", "file_kind", "jsonl_lines", "replace_file", "to_json", "write_atomically"]


class DiskFull(ElspethError):
    """A write failed because the disk (or the user's quota) is full; names the file."""

    exit_code = 1


def disk_full(path: Path | str, exc: OSError) -> DiskFull | None:
    """A :class:`DiskFull` naming ``path`` when ``exc`` says the disk or quota is full, else None."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return DiskFull(f"the disk is full: cannot write {path} ({exc.strerror}); free some space or write elsewhere")


_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


def file_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``"character device"``), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "special file")


def replace_file(tmp: Path | str, target: Path) -> None:
    """Rename ``tmp`` over ``target``, only when ``target`` is absent or a regular file.

    Raises:
        ElspethError: ``target`` is a device, FIFO, socket or folder (``tmp`` is left for the caller).
        DiskFull: the rename failed because the disk is full.
    """
    kind = file_kind(target)
    if kind is not None:
        raise ElspethError(f"refusing to replace {target}: it is a {kind}, not a regular file")
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise disk_full(target, exc) or exc from None


def write_atomically(path: Path, writer: Callable[[IO[str]], None]) -> None:
    """Write through a temporary file in the same folder, then rename it: a reader never sees half a file.

    Only a regular file is ever replaced: a device, FIFO, socket or folder at ``path`` is refused.

    Raises:
        ElspethError: ``path`` exists and is not a regular file.
        DiskFull: the disk filled up while writing (naming ``path``).
    """
    kind = file_kind(path)
    if kind is not None:
        raise ElspethError(f"refusing to replace {path}: it is a {kind}, not a regular file")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise disk_full(path, exc) or exc from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer(handle)
        replace_file(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise disk_full(path, exc) or exc from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    """JSON with NaN and infinities written as null (JSON has no such numbers)."""
    return json.dumps(_clean(value), default=_json_default, ensure_ascii=False, **kwargs)


def jsonl_lines(result: RunResult, include_failures: bool = True) -> Iterator[str]:
    """The result as JSON Lines: one object per record (``status: ok``), then per failure (``status: failed``).

    The ``jsonl`` sink writes these; other sinks that ship results elsewhere (a blob, a bundle) use the
    same lines so every copy of a run's rows has one shape.
    """
    for r in result.records:
        item: dict[str, Any] = {
            "status": "ok",
            "row_id": r.row_id,
            "experiment": r.group,
            "inputs": r.inputs,
            "outputs": r.outputs,
            "metrics": r.metrics,
        }
        yield to_json(item) + "\n"
    if include_failures:
        for f in result.failures:
            item = {
                "status": "failed",
                "row_id": f.row_id,
                "experiment": f.group,
                "inputs": f.inputs,
                "stage": f.stage,
                "error": f.error,
                "attempts": f.attempts,
                "outputs": f.output,
                "metrics": f.metrics,
            }
            yield to_json(item) + "\n"
