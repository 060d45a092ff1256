"""Every first-party package exports, through lazy_exports, each name its ``__all__`` lists.

Here, not in core's tests: it imports the other distributions, which core's isolated session lacks.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(
    p.parent.name for p in ROOT.glob("packages/*/src/*/__init__.py") if "lazy_exports" in p.read_text("utf-8")
)


def test_the_packages_using_lazy_exports_are_found() -> None:
    assert {"elspeth_llm_openai", "elspeth_sink_excel", "elspeth_signed", "elspeth_reports"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_loads(name: str) -> None:
    package = importlib.import_module(name)
    for exported in package.__all__:
        assert getattr(package, exported) is not None, (name, exported)
