"""Entry point of ``elspeth-signed``: registers the ``signed`` sink (``elspeth verify`` is in :mod:`.commands`)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_signed.sink import SignedSink

__all__ = ["register_sinks"]


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``signed`` sink."""
    register(SignedSink)
