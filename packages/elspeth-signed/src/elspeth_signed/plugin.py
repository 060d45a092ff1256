"""Entry point of ``elspeth-signed``: registers the ``signed`` sink (``elspeth verify`` is in :mod:`.commands`)."""

from __future__ import annotations

from elspeth import Registrar, hookimpl

__all__ = ["register_sinks"]


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the ``signed`` sink."""
    register(
        "elspeth_signed.sink:SignedSink",
        name="signed",
        description="Results and a manifest signed with an HMAC, so that any change to the files can be detected.",
    )
