"""``ELSPETH_TRACE=1``: print every hook call to stderr, as datasette's trace switch does.

pluggy traces the calls that go through ``pm.hook``; Elspeth calls registration and observer hooks
one implementation at a time (so one plugin's failure stays its own), and reports those here.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def enabled() -> bool:
    """True when ``ELSPETH_TRACE`` is set to anything but empty or 0."""
    return os.environ.get("ELSPETH_TRACE", "") not in ("", "0")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def hook_call(hook: str, plugin: str, kwargs: dict[str, Any]) -> None:
    """Report one call of ``hook`` on ``plugin``, if tracing is on."""
    if enabled():
        args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())
        sys.stderr.write(f"[elspeth trace] {hook}({args}) -> {plugin}\n")
