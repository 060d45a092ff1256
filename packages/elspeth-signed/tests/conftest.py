"""This distribution's plugins in every registry its tests build: they are no longer core's builtins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elspeth import Registry, RunResult
from elspeth_testing import build_registry
from elspeth_testing.plugin import MakeRegistry, RunSettings

# what the entry point of elspeth-signed registers, under the label and distribution it has when installed
PLUGIN = ("signed", "elspeth-signed", "elspeth_signed.plugin")


def _with_plugin(*plugins: Any, **options: Any) -> Registry:
    from elspeth.discovery import PluginSource

    label, dist, module = PLUGIN
    return build_registry(PluginSource(label, dist, "0.1.0", module), *plugins, **options)


@pytest.fixture
def make_registry() -> MakeRegistry:
    return _with_plugin


@pytest.fixture
def run_settings() -> RunSettings:
    from elspeth.config import load_settings
    from elspeth.engine import run_settings as run

    def run_file(path: str | Path, registry: Registry | None = None) -> RunResult:
        return run(load_settings(path), registry if registry is not None else _with_plugin())

    return run_file
