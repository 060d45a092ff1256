"""A :class:`elspeth.Progress` that records what it is shown, for tests of an orchestrator's live figures."""

from __future__ import annotations

__all__ = ["RecordingProgress"]


class RecordingProgress:
    """Keeps every status line an orchestrator shows (``lines``) and counts the rows it reports.

    Example::

        progress = RecordingProgress()
        await execute(await prepare(load_settings(path), registry, progress=progress))
        assert "msg/s" in progress.lines[-1]

    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ok = 0
        self.failed = 0

    def start(self, total: int | None, description: str) -> None:
        """A phase begins (nothing to record)."""

    def advance(self, ok: bool) -> None:
        """Count one finished row."""
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def finish(self) -> None:
        """A phase ends (nothing to record)."""

    def status(self, text: str) -> None:
        """Keep the line."""
        self.lines.append(text)
