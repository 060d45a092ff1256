"""Parquet files written with pyarrow, and one real LocalCluster of 2 single-threaded workers per module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elspeth_testing.services import dask_cluster


def people(n: int) -> pa.Table:
    """``n`` people: an id, an email repeating every 25 rows, an age (some out of range) and a joining date."""
    return pa.table(
        {
            "id": [f"p{i:05d}" for i in range(n)],
            "email": [f"user{i % 25}@example.org" for i in range(n)],
            "age": [(i * 7) % 130 for i in range(n)],
            "joined": [dt.date(2025, 1, 1) + dt.timedelta(days=i % 365) for i in range(n)],
            "score": [None if i % 11 == 0 else i / 4 for i in range(n)],
        }
    )


def write_people(path: Path, n: int, row_group_size: int) -> Path:
    """A file of :func:`people` in row groups of ``row_group_size`` rows."""
    pq.write_table(people(n), path, row_group_size=row_group_size)
    return path


@pytest.fixture
def write() -> Any:
    """:func:`write_people`, for tests (conftest is not importable under ``--import-mode=importlib``)."""
    return write_people


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with dask_cluster() as client:
        yield client
