"""Builtin utility ``response_cache``; the cache itself is host code, in :mod:`elspeth.cache`."""

from __future__ import annotations

from elspeth.cache import ResponseCache
from elspeth.hookspecs import Registrar, hookimpl

__all__ = ["register_utilities"]


@hookimpl
def register_utilities(register: Registrar) -> None:
    """Register the builtin utilities."""
    register(ResponseCache)
