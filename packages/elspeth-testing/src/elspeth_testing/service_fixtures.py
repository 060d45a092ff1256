"""Fixtures for the real services in :mod:`elspeth_testing.services`.

Fixtures:
    postgres: one PostgreSQL server for the test session (:class:`~elspeth_testing.services.PostgresServer`),
        started on first use and stopped at the end of the session.
    postgres_url: the URL of a new, empty database on that server, one per test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from elspeth_testing.services import PostgresServer, postgres_server

__all__ = ["postgres", "postgres_url"]

_NAMES = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a loopback port for the session; a server that cannot start fails the test."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A new empty database on the session's server, so no test sees another's runs."""
    return postgres.create_database(f"test_{os.getpid()}_{next(_NAMES)}")
