"""The pytest plugin (entry point ``pytest11: elspeth``): fixtures for testing Elspeth plugins.

Fixtures:
    make_registry: build a :class:`~elspeth.Registry` from plugin modules.
    plugin_context: a :class:`~elspeth.PluginContext` rooted in ``tmp_path``.
    write_settings: write a settings file and its data files into ``tmp_path``.
    run_settings: load and run a settings file in-process, returning the :class:`~elspeth.RunResult`.
    elspeth_cli: run ``python -m elspeth`` in a subprocess with a clean ``ELSPETH_*`` environment.
    postgres, postgres_url: a real PostgreSQL server for the session, and a new database on it per test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Protocol

import pytest

from elspeth import PluginContext, PluginSource, Registry, RunResult
from elspeth_testing._cli import CliResult, run_cli
from elspeth_testing._registry import build_registry
from elspeth_testing._settings import write_settings_files

__all__ = ["ElspethCli", "MakeRegistry", "RunSettings", "WriteSettings"]


class MakeRegistry(Protocol):
    """The ``make_registry`` fixture: see :func:`elspeth_testing.build_registry` for the arguments."""

    def __call__(
        self,
        *plugins: ModuleType | str | PluginSource,
        builtins: bool = True,
        testing: bool = True,
        distribution: str = "test-plugins",
        version: str = "0.0.0",
        disabled: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Registry:
        """Build a registry of ``plugins``."""
        ...


class WriteSettings(Protocol):
    """The ``write_settings`` fixture: ``write_settings(yaml_text, {"data.csv": "..."})`` returns the path."""

    def __call__(
        self, text: str, files: Mapping[str, str | bytes] | None = None, *, name: str = "settings.yaml"
    ) -> Path:
        """Write the settings and files into ``tmp_path``."""
        ...


class RunSettings(Protocol):
    """The ``run_settings`` fixture: load ``path`` and run it with ``registry`` (default: builtins and ``rows``)."""

    def __call__(self, path: str | Path, registry: Registry | None = None) -> RunResult:
        """Run the settings file in-process."""
        ...


class ElspethCli(Protocol):
    """The ``elspeth_cli`` fixture: ``elspeth_cli("validate", "settings.yaml", env={...})``, run in ``tmp_path``."""

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> CliResult:
        """Run ``python -m elspeth ARGS``."""
        ...


@pytest.fixture
def make_registry() -> MakeRegistry:
    """Build a registry from plugin modules through Elspeth's discovery; installed entry points are ignored."""
    return build_registry


@pytest.fixture
def plugin_context(tmp_path: Path) -> PluginContext:
    """A plugin context whose inputs resolve against ``tmp_path`` and whose outputs go to ``tmp_path/output``."""
    return PluginContext(run_id="test-run", name="test", base_dir=tmp_path, output_dir=tmp_path / "output")


@pytest.fixture
def write_settings(tmp_path: Path) -> WriteSettings:
    """Write a settings YAML (dedented) and data files into ``tmp_path``; returns the settings file's path."""

    def write(text: str, files: Mapping[str, str | bytes] | None = None, *, name: str = "settings.yaml") -> Path:
        return write_settings_files(tmp_path, text, files, name=name)

    return write


@pytest.fixture
def run_settings() -> RunSettings:
    """Load a settings file and run it in-process; raises what a run raises (``ConfigError``, ``RunFailed``)."""
    from elspeth import load_settings
    from elspeth import run_settings as run

    def run_file(path: str | Path, registry: Registry | None = None) -> RunResult:
        return run(load_settings(path), registry if registry is not None else build_registry())

    return run_file


@pytest.fixture
def elspeth_cli(tmp_path: Path) -> ElspethCli:
    """Run ``python -m elspeth ...`` in a subprocess in ``tmp_path``, with no inherited ``ELSPETH_*`` variable."""

    def cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> CliResult:
        return run_cli(*args, cwd=cwd or tmp_path, env=env)

    return cli


# the LLM test server fixtures (llm_server, llm_server_factory) and the real services (postgres, postgres_url)
pytest_plugins = ["elspeth_testing.llm_fixtures", "elspeth_testing.service_fixtures"]
