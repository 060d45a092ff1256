"""The progress bar shown on a terminal: rows done, failures, elapsed time, ETA and an orchestrator's live figures."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    """A :class:`elspeth.Progress` drawn with rich on stderr."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._shown: TaskID | None = None  # the last bar begun: a status line after its phase ends still goes there
        self._failed = 0
        self._progress.start()

    def start(self, total: int | None, description: str) -> None:
        """Begin a bar for a new phase."""
        self._failed = 0
        self._task = self._shown = self._progress.add_task(description, total=total, failed=0, status="")

    def advance(self, ok: bool) -> None:
        """One more row finished."""
        if self._task is None:
            self.start(None, "rows")
        assert self._task is not None
        if not ok:
            self._failed += 1
        self._progress.update(self._task, advance=1, failed=self._failed)

    def status(self, text: str) -> None:
        """Show the orchestrator's live figures beside the bar (the streaming mode's messages/s, lag, in flight)."""
        if self._shown is None:
            self.start(None, "rows")
        assert self._shown is not None
        self._progress.update(self._shown, status=text)

    def finish(self) -> None:
        """The phase ended."""
        self._task = None

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()
