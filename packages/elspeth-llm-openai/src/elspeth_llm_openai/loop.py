"""One SDK (or HTTP) client per running event loop: :class:`elspeth.LoopBoundSDK`, kept importable from here."""

from __future__ import annotations

from elspeth import LoopBoundSDK

__all__ = ["LoopBoundSDK"]
