"""One real LocalCluster of 2 single-threaded worker processes for the whole module (clusters are slow to start).

The LLM key is put into the environment before the workers start, as a real cluster's workers have
it in theirs: the run must read it there, never ship it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import elspeth_llm_openai.sdk  # noqa: F401  # import openai now, not inside the first call's timeout

KEY_ENV = "ELSPETH_DASK_TEST_KEY"
KEY = "sk-dask-test-key-7f3a9c1e5b"


def local_cluster(workers: int) -> Iterator[Any]:
    """A client of a LocalCluster of ``workers`` single-threaded processes, the key in their environment."""
    from distributed import Client, LocalCluster

    os.environ[KEY_ENV] = KEY
    local = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()
        os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    yield from local_cluster(2)


@pytest.fixture(scope="module")
def four() -> Iterator[Any]:
    """Four workers: the cluster-wide controls' tests (tests/test_cluster_controls.py)."""
    yield from local_cluster(4)


@pytest.fixture
def llm_key() -> tuple[str, str]:
    """(the environment variable the settings name, the key the workers find in it)."""
    return KEY_ENV, KEY
