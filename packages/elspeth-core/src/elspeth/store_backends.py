"""Run store backends beyond the SQLite file, chosen by ``store.url`` and found by the URL's scheme.

A backend is a subclass of :class:`~elspeth.RunStore` with a classmethod ``open_url(url, *, create)``,
named in the ``elspeth.run_stores`` entry-point group under the scheme it serves::

    [project.entry-points."elspeth.run_stores"]
    postgresql = "elspeth_store_postgres:PostgresRunStore"

A store is not a per-run plugin with options but where runs are kept, so ``elspeth runs`` opens it
from the URL alone, without building a run: hence an entry-point group of its own, like
``elspeth.commands``. Nothing is imported until a URL with that scheme is opened, so core never
imports a database driver it does not need.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from elspeth.errors import ConfigError, Problem

if TYPE_CHECKING:
    from elspeth.store import RunStore

__all__ = ["RUN_STORES_GROUP", "open_store_url"]

RUN_STORES_GROUP = "elspeth.run_stores"
_KNOWN = {"postgresql": "elspeth-store-postgres", "postgres": "elspeth-store-postgres"}


def open_store_url(url: str, *, create: bool = True, file: str | None = None) -> RunStore:
    """Open the run store at ``url`` with the backend installed for its scheme.

    A partition's worker opens the run's store this way, on a connection of its own, then
    :meth:`~elspeth.RunStore.join_run`.

    Args:
        url: the database's URL (``store.url``).
        create: make the store's tables when the database has none.
        file: the settings file, for the message when no backend serves the scheme.

    Raises:
        ConfigError: no installed backend serves the scheme, or its module fails to import (``store.url``).
        StoreError: the backend cannot reach or use the database.
    """
    scheme = urlsplit(url).scheme.lower()
    found = [ep for ep in metadata.entry_points(group=RUN_STORES_GROUP) if ep.name == scheme]
    if not found:
        known = sorted({ep.name for ep in metadata.entry_points(group=RUN_STORES_GROUP)})
        have = ", ".join(f"{name}://" for name in known) or "none"
        needed = f"; install {_KNOWN[scheme]} for it" if scheme in _KNOWN else ""
        message = f"no run store backend serves {scheme}:// (installed: {have}){needed}"
        raise ConfigError(Problem("store.url", message, file=file))
    entry = found[0]
    try:
        backend = entry.load()
    except Exception as exc:  # a broken backend is a bad setting to fix, not a crash
        owner = entry.dist.name if entry.dist is not None else "an unknown distribution"
        message = f"the run store backend for {scheme}:// ({entry.value}, from {owner}) failed to import: {exc}"
        raise ConfigError(Problem("store.url", message, file=file)) from None
    store: RunStore = backend.open_url(url, create=create)
    return store
