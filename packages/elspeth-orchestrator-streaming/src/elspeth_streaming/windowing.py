"""Which open window each emitted result counts in, and when a window is due to close.

A count window is due once it holds ``every`` results. A time window (``seconds``, tumbling from the
run's start by arrival time) is due once its time is over *and* the watermark has passed its end: no
message that arrived within it is still being worked on (``in_flight()``, the oldest arrival of a
message read and not yet queued for the sinks) or queued for the sinks (counted here per window as
results are queued). So a slow LLM call delays its window's record instead of leaving it out.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from elspeth_streaming.windows import OpenWindow, WindowSpec

if TYPE_CHECKING:
    from elspeth import Failure, Record

__all__ = ["Windowing"]

Finished = Any  # Record | Failure
_WATERMARK_POLL = 0.05  # a time window whose time is over waits for its last messages, looked at this often


class Windowing:
    """Every window of the run and its open windows (see the module's docstring).

    Args:
        specs: the checked windows.
        in_flight: the oldest arrival (``time.monotonic()``) of a message read and not yet queued, or None.
    """

    def __init__(self, specs: Sequence[WindowSpec], in_flight: Callable[[], float | None]) -> None:
        self.specs, self.in_flight = list(specs), in_flight
        self.t0 = time.monotonic()
        self._timed = [s for s in self.specs if s.seconds is not None]
        self._counting: dict[str, OpenWindow] = {}
        self._open: dict[str, dict[int, OpenWindow]] = {s.name: {} for s in self._timed}
        self._closed_through: dict[str, int] = {s.name: -1 for s in self._timed}
        self._queued: dict[str, Counter[int]] = {s.name: Counter() for s in self._timed}

    def _index(self, spec: WindowSpec, arrived: float) -> int:
        assert spec.seconds is not None
        return max(0, int((arrived - self.t0) // spec.seconds))

    def queued(self, arrived: float) -> None:
        """A result whose message arrived at ``arrived`` waits for the sinks: its time windows wait for it."""
        for spec in self._timed:
            self._queued[spec.name][self._index(spec, arrived)] += 1

    def add(self, group: Sequence[tuple[Record | Failure, float]], counted: set[str]) -> list[OpenWindow]:
        """Count the results of an emitted group (those in ``counted``); the count windows this filled."""
        now = time.monotonic()
        full: list[OpenWindow] = []
        for item, arrived in group:
            for spec in self._timed:
                waiting = self._queued[spec.name]
                k = self._index(spec, arrived)
                waiting[k] -= 1
                if waiting[k] <= 0:
                    del waiting[k]
            if item.row_id not in counted:
                continue
            for spec in self.specs:
                window = (
                    self._counting_window(spec, now) if spec.every is not None else self._timed_window(spec, arrived)
                )
                window.add(item, now - arrived)
                if spec.every is not None and window.messages >= spec.every:
                    full.append(self._counting.pop(spec.name))
        return full

    def _counting_window(self, spec: WindowSpec, now: float) -> OpenWindow:
        window = self._counting.get(spec.name)
        if window is None:
            window = self._counting[spec.name] = OpenWindow(spec, now, None)
        return window

    def _timed_window(self, spec: WindowSpec, arrived: float) -> OpenWindow:
        assert spec.seconds is not None
        # a message whose window closed already (taken over on resume, read as the window closed) counts in the next
        k = max(self._index(spec, arrived), self._closed_through[spec.name] + 1)
        windows = self._open[spec.name]
        window = windows.get(k)
        if window is None:
            start = self.t0 + k * spec.seconds
            window = windows[k] = OpenWindow(spec, start, start + spec.seconds)
        return window

    def due(self) -> list[OpenWindow]:
        """The time windows whose time is over and whose every message has been emitted, oldest first."""
        now = time.monotonic()
        oldest = self.in_flight()
        closing: list[OpenWindow] = []
        for spec in self._timed:
            windows, waiting = self._open[spec.name], self._queued[spec.name]
            for k in sorted(windows):
                end = windows[k].end
                assert end is not None
                if now < end or (oldest is not None and oldest < end) or any(j <= k for j in waiting):
                    break
                closing.append(windows.pop(k))
                self._closed_through[spec.name] = k
        return closing

    def wait_s(self) -> float | None:
        """How long the emitter may wait for results before a time window may be due (None: no open time window)."""
        ends = [w.end for windows in self._open.values() for w in windows.values() if w.end is not None]
        if not ends:
            return None
        return max(_WATERMARK_POLL, min(ends) - time.monotonic())

    def rest(self) -> list[OpenWindow]:
        """Every window still open (the run ends: they are emitted as partial), the windows' order kept."""
        rest = [self._counting.pop(s.name) for s in self.specs if s.name in self._counting]
        for spec in self._timed:
            windows = self._open[spec.name]
            rest.extend(windows.pop(k) for k in sorted(windows))
        return rest
