"""Fixtures for a distribution's own tests: every registry they build holds the distribution's plugins.

A plugin distribution's tests run against its plugins as installed, but ``make_registry`` and
``run_settings`` build registries from core's builtins alone (installed entry points are ignored, so
tests do not depend on what else is installed). Its ``conftest.py`` adds its own entry point back::

    from elspeth_testing import distribution_fixtures

    make_registry, run_settings = distribution_fixtures("signed", "elspeth-signed", "elspeth_signed.plugin")
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from elspeth import PluginSource, Registry, RunResult
from elspeth_testing._registry import build_registry

__all__ = ["distribution_fixtures"]


def distribution_fixtures(label: str, distribution: str, module: str) -> tuple[Any, Any]:
    """``make_registry`` and ``run_settings`` fixtures whose registries add the entry point ``label = module``.

    Args:
        label: the entry point's name, as in the distribution's ``[project.entry-points.elspeth]``.
        distribution: the distribution's name, as listings show it.
        module: the entry point's module.

    """
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:  # its tests run from a checkout that did not install it
        version = "0+unknown"
    source = PluginSource(label, distribution, version, module)

    def with_plugin(*plugins: Any, **options: Any) -> Registry:
        return build_registry(source, *plugins, **options)

    @pytest.fixture(name="make_registry")
    def make_registry() -> Any:
        return with_plugin

    @pytest.fixture(name="run_settings")
    def run_settings() -> Any:
        from elspeth import load_settings
        from elspeth import run_settings as run

        def run_file(path: str | Path, registry: Registry | None = None) -> RunResult:
            return run(load_settings(path), registry if registry is not None else with_plugin())

        return run_file

    return make_registry, run_settings
