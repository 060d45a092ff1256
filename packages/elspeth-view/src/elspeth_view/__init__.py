"""``elspeth view``: a local, read-only web viewer over the run store.

Every page is served from this package (no asset from the internet) by the standard library's HTTP
server on 127.0.0.1; rows are read a page at a time with SQL ``LIMIT``/``OFFSET`` on the store's
primary key, so a run of a million rows opens as fast as one of ten. From Python::

    from elspeth_view import open_store, rows_page

    with open_store(Path("output/elspeth-runs.sqlite")) as store:
        page = rows_page(store, run_id, limit=50)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_view.queries import (
        StoreUnreadable,
        diff_page,
        list_runs,
        open_store,
        row_detail,
        rows_page,
        run_detail,
    )
    from elspeth_view.server import serve

__version__ = "0.1.0"

_LAZY = {
    "StoreUnreadable": "elspeth_view.queries",
    "diff_page": "elspeth_view.queries",
    "list_runs": "elspeth_view.queries",
    "open_store": "elspeth_view.queries",
    "row_detail": "elspeth_view.queries",
    "rows_page": "elspeth_view.queries",
    "run_detail": "elspeth_view.queries",
    "serve": "elspeth_view.server",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["StoreUnreadable", "diff_page", "list_runs", "open_store", "row_detail", "rows_page", "run_detail", "serve"]
