"""All first-party distributions move in lockstep until 1.0, and the shipped example matches the docs' copy."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import elspeth

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = sorted(ROOT.glob("packages/*/pyproject.toml"))
META = "elspeth"
CORE = "elspeth-core"


def project(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return data


PROJECTS = {canonicalize_name(project(p)["name"]): (p, project(p)) for p in PYPROJECTS}
VERSION = project(ROOT / "packages/elspeth-core/pyproject.toml")["version"]


def requirements(meta: dict[str, Any]) -> list[Requirement]:
    return [Requirement(text) for text in meta.get("dependencies", [])]


def test_the_workspace_has_core_and_the_meta_package() -> None:
    assert {CORE, META} <= set(PROJECTS)


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_distribution_has_the_same_version(name: str) -> None:
    path, meta = PROJECTS[name]
    assert meta["version"] == VERSION, f"{path.relative_to(ROOT)} is at {meta['version']}, core at {VERSION}"


@pytest.mark.parametrize("name", sorted(set(PROJECTS) - {CORE, META}))
def test_every_plugin_distribution_depends_on_this_minor_of_core(name: str) -> None:
    path, meta = PROJECTS[name]
    version = Version(VERSION)
    assert version.major == 0, "after 1.0 the lockstep rule changes; update this test with it"
    wanted = {f">=0.{version.minor}", f"<0.{version.minor + 1}"}
    (core,) = [r for r in requirements(meta) if canonicalize_name(r.name) == CORE]
    assert {str(s) for s in core.specifier} == wanted, (
        f"{path.relative_to(ROOT)} depends on {core}; it must be elspeth-core>=0.{version.minor},<0.{version.minor + 1}"
    )


def test_the_meta_package_pins_each_distribution_it_lists_exactly() -> None:
    path, meta = PROJECTS[META]
    pinned = {canonicalize_name(r.name): r for r in requirements(meta)}
    assert CORE in pinned
    for name, requirement in pinned.items():
        assert name in PROJECTS, f"{path.relative_to(ROOT)} lists {name}, which is not a distribution in packages/"
        assert str(requirement.specifier) == f"=={VERSION}", (
            f"{path.relative_to(ROOT)}: {requirement} is not =={VERSION}"
        )


def declared_versions() -> dict[str, str]:
    """``__version__`` of every package under packages/*/src that sets one, read without importing it."""
    found = {}
    for init in ROOT.glob("packages/*/src/*/__init__.py"):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
                assert isinstance(node.value, ast.Constant)
                found[str(init.relative_to(ROOT))] = str(node.value.value)
    return found


def test_every_dunder_version_is_the_distribution_version() -> None:
    versions = declared_versions()
    assert "packages/elspeth-core/src/elspeth/__init__.py" in versions
    assert {path: v for path, v in versions.items() if v != VERSION} == {}
    assert elspeth.__version__ == VERSION


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and "output" not in p.relative_to(folder).parts
    }


def test_examples_quickstart_is_the_example_elspeth_init_writes() -> None:
    shipped = files(ROOT / "packages/elspeth-core/src/elspeth/_example")
    assert shipped, "elspeth init has nothing to write"
    assert files(ROOT / "examples/quickstart") == shipped, (
        "examples/quickstart/ differs from packages/elspeth-core/src/elspeth/_example/; copy one over the other"
    )
