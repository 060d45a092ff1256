"""Writing a run's files: atomically, as JSON without NaN, and a result as JSON Lines.

Host code (the run store, the sinks, plugins through ``elspeth.write_atomically``, ``elspeth.to_json``
and ``elspeth.jsonl_lines``) shares these, so every copy of a run's rows has one shape.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth.types import RunResult

__all__ = ["jsonl_lines", "to_json", "write_atomically"]


def write_atomically(path: Path, writer: Callable[[IO[str]], None]) -> None:
    """Write through a temporary file in the same folder, then rename it: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer(handle)
        os.replace(tmp, path)
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
