"""The live status line of a streaming run: messages/s, lag, in flight, failures and cost.

Every ``progress_seconds`` a task works out the figures and hands them, as one line, to the run's
progress display (``ctx.progress.status(text)``, which the CLI's bar draws on stderr; a
:class:`elspeth.Progress` without ``status`` shows only its count). Lag is what the source says is
left to read, where it can say (``lag()`` on its rows: Redis's group lag, a followed file's unread
bytes); a source that cannot say has no lag in the line, never a 0. The lag also goes to the
observers as the ``consumer_lag`` gauge (Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from elspeth import invoke

if TYPE_CHECKING:
    from elspeth import OrchestrationContext

__all__ = ["StatusFigures", "StatusLine"]

log = logging.getLogger(__name__)


@dataclass
class StatusFigures:
    """What the status line shows, at one moment."""

    messages: int
    rate: float
    in_flight: int
    failures: int
    cost: float | None
    lag: int | None = None
    lag_unit: str = "messages"

    def text(self) -> str:
        """The line: ``1520 messages, 251.9 msg/s, lag 1200 messages, 64 in flight, 3 failed, cost 0.0123``."""
        parts = [f"{self.messages} messages", f"{self.rate:.1f} msg/s"]
        if self.lag is not None:
            parts.append(f"lag {self.lag} {self.lag_unit}")
        parts += [f"{self.in_flight} in flight", f"{self.failures} failed"]
        if self.cost is not None:
            parts.append(f"cost {self.cost:.6g}")
        return ", ".join(parts)


class StatusLine:
    """Works out the figures every ``every`` seconds and shows them (see the module's docstring).

    Args:
        ctx: the run's context (its progress display, ledger and observers).
        source: the source's rows; its ``lag()`` (sync or async, ``int`` or None) and ``lag_unit``, if it has them.
        counts: ``() -> (messages taken, results finished, failures)`` of the run so far.
        every: seconds between two lines.
    """

    def __init__(self, ctx: OrchestrationContext, source: Any, counts: Any, every: float) -> None:
        self.ctx, self.counts, self.every = ctx, counts, every
        self._lag = getattr(source, "lag", None)
        self._unit = str(getattr(source, "lag_unit", "messages"))
        self._show = getattr(ctx.progress, "status", None)
        self._last = (time.monotonic(), 0)
        self._costed = ctx.loaded.settings.cost_tracker is not None

    async def figures(self) -> StatusFigures:
        """The figures now (the rate over the time since the last call)."""
        taken, finished, failures = self.counts()
        now = time.monotonic()
        then, before = self._last
        self._last = (now, taken)
        rate = (taken - before) / (now - then) if now > then else 0.0
        cost = self.ctx.ledger.cost if self._costed else None
        figures = StatusFigures(taken, rate, max(0, taken - finished), failures, cost, lag_unit=self._unit)
        if self._lag is not None:
            try:
                lag = await invoke(self._lag)
            except Exception as exc:  # the lag is a nicety: a source that cannot say now is left out of the line
                log.debug("the source's lag is unknown: %s", exc)
                lag = None
            figures.lag = None if lag is None else int(lag)
        return figures

    async def run(self) -> None:
        """Show the line every ``every`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            await self.show()

    async def show(self) -> None:
        """Show the line once (and report the lag to the observers)."""
        figures = await self.figures()
        if figures.lag is not None and self.ctx.observation is not None:
            self.ctx.observation.gauge("consumer_lag", figures.lag)
        if self._show is not None:
            self._show(figures.text())
