"""``ELSPETH_TRACE=1``: print every hook call to stderr, as datasette's trace switch does.

Every hook is called through pluggy, so the trace is pluggy's own (``pm.trace.root.setwriter`` and
``pm.enable_tracing``, set up by :func:`elspeth._hooks.enable_tracing`): each call with its
arguments, then its result.
"""

from __future__ import annotations

import os

__all__ = ["enabled"]


def enabled() -> bool:
    """True when ``ELSPETH_TRACE`` is set to anything but empty or 0."""
    return os.environ.get("ELSPETH_TRACE", "") not in ("", "0")
