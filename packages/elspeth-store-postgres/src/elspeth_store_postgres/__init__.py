"""Elspeth's PostgreSQL run store, for runs whose partitions commit from many machines at once.

Choose it in the settings::

    store:
      url: postgresql://elspeth@db.example:5432/elspeth

The password is never in the URL (the settings are kept in the store): libpq reads it from
``PGPASSWORD`` or ``~/.pgpass``.
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports

if TYPE_CHECKING:
    from elspeth_store_postgres.store import PostgresRunStore

__version__ = "0.1.0"

# psycopg loads on first use, so that importing the package stays cheap
__getattr__ = lazy_exports(__name__, {"PostgresRunStore": "elspeth_store_postgres.store"})

__all__ = ["PostgresRunStore"]
