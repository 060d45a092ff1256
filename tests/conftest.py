"""Fixtures for the tests that span distributions: the CLI in a subprocess, and fixture plugin wheels
installed into throwaway virtual environments that see this environment's packages."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLUGIN_DIST = "elspeth-fixture-plugin"
PLUGIN_VERSION = "1.2.3"
BROKEN_DIST = "elspeth-fixture-broken"


@dataclass(frozen=True)
class Done:
    """A finished CLI process."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> object:
        """Standard output parsed as JSON."""
        return json.loads(self.stdout)


Cli = Callable[..., Done]


@pytest.fixture(scope="session")
def base_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for every subprocess: this one without any ``ELSPETH_*`` variable.

    Bytecode is cached under pytest's cache folder (``PYTHONPYCACHEPREFIX``), never in the source
    tree, so that each subprocess does not compile its imports afresh when the caller's environment
    sets ``PYTHONDONTWRITEBYTECODE`` (scipy alone takes seconds to compile).
    """
    cache = getattr(request.config, "cache", None)
    prefix = cache.mkdir("pycache") if cache is not None else tmp_path_factory.mktemp("pycache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELSPETH_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _runner(python: str | Path, base_env: Mapping[str, str]) -> Cli:
    def run(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Done:
        done = subprocess.run(
            [str(python), "-m", "elspeth", *args],
            cwd=cwd,
            env={**base_env, **(env or {})},
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def cli(base_env: dict[str, str]) -> Cli:
    """``python -m elspeth ARGS`` in this environment: ``cli("run", "s.yaml", cwd=..., env={...})``."""
    return _runner(sys.executable, base_env)


@pytest.fixture(scope="session")
def wheels(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture plugin distributions built into wheels once per session, by distribution name."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("building the fixture plugins needs hatchling in this environment: pip install hatchling")
    work = tmp_path_factory.mktemp("wheels")
    sources = []
    for name in ("plugin_project", "broken_plugin_project"):
        # build from a copy, so that no build output ever lands in the source tree
        sources.append(shutil.copytree(FIXTURES / name, work / "src" / name))
    out = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), *sources],
        env=base_env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    found = {p.name.split("-")[0].replace("_", "-"): p for p in out.glob("*.whl")}
    assert set(found) == {PLUGIN_DIST, BROKEN_DIST}, found
    return found


def make_venv(path: Path, wheels: Sequence[Path], env: Mapping[str, str]) -> Path:
    """A virtual environment at ``path`` that sees this environment's packages and has ``wheels`` installed.

    This environment's site-packages is added with ``site.addsitedir`` from a ``.pth`` file, so that
    the editable installs' own ``.pth`` files are processed too. Returns the venv's python.
    """
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    Path(purelib, "_elspeth_test_parent_env.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", *map(str, wheels)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return python


@pytest.fixture(scope="session")
def plugin_cli(wheels: dict[str, Path], base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The CLI of a venv with ``elspeth-fixture-plugin`` installed from its wheel."""
    venv_dir = tmp_path_factory.mktemp("plugin-venv") / "venv"
    return _runner(make_venv(venv_dir, [wheels[PLUGIN_DIST]], base_env), base_env)


@pytest.fixture(scope="session")
def broken_cli(wheels: dict[str, Path], base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The CLI of a venv with ``elspeth-fixture-broken`` installed from its wheel."""
    venv_dir = tmp_path_factory.mktemp("broken-venv") / "venv"
    return _runner(make_venv(venv_dir, [wheels[BROKEN_DIST]], base_env), base_env)


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A copy of the offline example project; returns its settings file."""
    target = tmp_path / "quickstart"
    shutil.copytree(ROOT / "packages/elspeth-core/src/elspeth/_example", target)
    return target / "settings.yaml"
