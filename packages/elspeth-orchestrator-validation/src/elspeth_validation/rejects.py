"""The rejects file: one CSV line per rejected row, written as rows are judged, in input order."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from elspeth import Artifact, Failure, neutralise_formula, replace_file

__all__ = ["RejectsFile"]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


class RejectsFile:
    """A CSV of rejected rows (``row_id``, the row's fields, ``rule``, ``reason``), written atomically.

    Lines go to a temporary file beside the target; :meth:`commit` renames it into place, :meth:`discard`
    removes it, so a reader never sees half a file and a failed run leaves none.
    """

    def __init__(self, path: Path, fields: Sequence[str], *, sanitize: bool = True) -> None:
        self.path = path
        self.fields = [f for f in fields if f not in ("row_id", "rule", "reason")]
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self._handle: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._safe: Callable[[Any], Any] = neutralise_formula if sanitize else (lambda value: value)
        self._writer.writerow([self._safe(c) for c in ["row_id", *self.fields, "rule", "reason"]])

    def add(self, failure: Failure) -> None:
        """Write one rejected row: its stage without the ``validation:`` prefix, and its reasons."""
        violations = failure.output.get("violations") or []
        rules = list(dict.fromkeys(v["rule"] for v in violations)) or [failure.stage.removeprefix("validation:")]
        values = [failure.row_id, *(_cell(failure.inputs.get(f)) for f in self.fields), ", ".join(rules)]
        self._writer.writerow([self._safe(v) for v in [*values, failure.error]])
        self.count += 1

    def commit(self) -> Artifact:
        """Close the file and move it into place."""
        self._handle.close()
        replace_file(self._tmp, self.path)  # only over a regular file
        return Artifact(self.path, "text/csv", "validation")

    def discard(self) -> None:
        """Close and remove the temporary file (the run failed)."""
        self._handle.close()
        Path(self._tmp).unlink(missing_ok=True)
