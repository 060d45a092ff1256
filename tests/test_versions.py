"""All first-party distributions move in lockstep until 1.0, each version written once; the shipped example matches.

The versions are read, checked and derived by ``tools/versions.py`` (the release tool); these tests
run it over the repository and over a copy, so the tool and the rule cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import elspeth

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "versions.py"
PYPROJECTS = sorted(ROOT.glob("packages/*/pyproject.toml"))
META = "elspeth"
CORE = "elspeth-core"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("elspeth_release_versions", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


versions = load_tool()


def project(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return data


PROJECTS = {canonicalize_name(project(p)["name"]): (p, project(p)) for p in PYPROJECTS}
DISTS = versions.distributions(ROOT)
VERSION = DISTS[CORE].version


def requirements(meta: dict[str, Any]) -> list[Requirement]:
    return [Requirement(text) for text in meta.get("dependencies", [])]


def test_the_workspace_has_core_and_the_meta_package() -> None:
    assert {CORE, META} <= set(PROJECTS)
    assert set(DISTS) == set(PROJECTS), "tools/versions.py does not see every distribution in packages/"


def test_the_release_tool_finds_every_version_in_step() -> None:
    assert versions.problems(ROOT) == []
    done = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(set(PROJECTS) - {META}))
def test_every_distribution_writes_its_version_once_in_its_own_package(name: str) -> None:
    path, meta = PROJECTS[name]
    assert "version" not in meta, f"{path.relative_to(ROOT)} writes its version out"
    assert meta.get("dynamic") == ["version"], (
        f'{path.relative_to(ROOT)}: write the version only in src/<package>/__init__.py (dynamic = ["version"])'
    )
    dist = DISTS[name]
    assert dist.version_file is not None
    assert dist.version_file.name in {"__init__.py", "__about__.py"}
    assert dist.version_file.parent.parent == path.parent / "src", f"{dist.version_file} is not {name}'s own package"


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_distribution_has_the_same_version(name: str) -> None:
    assert DISTS[name].version == VERSION, f"{DISTS[name].pyproject} is at {DISTS[name].version}, core at {VERSION}"


@pytest.mark.parametrize("name", sorted(set(PROJECTS) - {CORE, META}))
def test_every_plugin_distribution_depends_on_this_minor_of_core(name: str) -> None:
    path, meta = PROJECTS[name]
    version = Version(str(VERSION))
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
        assert str(requirement.specifier) == f"=={DISTS[name].version}", (
            f"{path.relative_to(ROOT)}: {requirement} is not =={DISTS[name].version}; "
            "run python tools/versions.py --write"
        )


def declared_versions() -> dict[str, str]:
    """``__version__`` of every module under packages/*/src that assigns one, read without importing it."""
    found = {}
    for module in ROOT.glob("packages/*/src/**/*.py"):
        for node in ast.parse(module.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
                assert isinstance(node.value, ast.Constant)
                found[str(module.relative_to(ROOT))] = str(node.value.value)
    return found


def test_a_version_is_assigned_only_where_the_pyproject_says() -> None:
    written = declared_versions()
    assert "packages/elspeth-core/src/elspeth/__init__.py" in written
    named = {str(d.version_file.relative_to(ROOT)) for d in DISTS.values() if d.version_file is not None}
    assert set(written) == named, "a module assigns __version__ that hatchling does not read: import it instead"
    assert set(written.values()) == {VERSION}


def test_no_source_file_writes_the_version_out() -> None:
    literal = re.compile(rf"[\"']{re.escape(str(VERSION))}[\"']")
    copies = [
        str(p.relative_to(ROOT))
        for p in ROOT.glob("packages/*/src/**/*.py")
        if p not in {d.version_file for d in DISTS.values()} and literal.search(p.read_text(encoding="utf-8"))
    ]
    assert copies == [], f"these modules write {VERSION} out; import __version__ from where the pyproject says"


def test_dunder_version_is_the_installed_distributions_version() -> None:
    assert elspeth.__version__ == VERSION
    assert metadata.version(CORE) == elspeth.__version__, "reinstall: the installed metadata predates this version"


def test_the_readmes_release_commands_are_the_tools() -> None:
    releasing = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Releasing\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", releasing, re.DOTALL)
    assert block, "README.md's Releasing section shows no commands"
    lines = [shlex.split(line, comments=True) for line in block[1].splitlines()]
    assert {"--check", "--set"} <= {words[2] for words in lines}
    for words in lines:
        assert words[:2] == ["python", "tools/versions.py"], words
        versions.parser().parse_args(words[2:])  # exits 2 on an argument the tool does not take


def copy_of_the_workspace(tmp_path: Path) -> Path:
    for pyproject in PYPROJECTS:
        folder = tmp_path / pyproject.parent.relative_to(ROOT)
        folder.mkdir(parents=True)
        shutil.copy(pyproject, folder / "pyproject.toml")
        dist = DISTS[canonicalize_name(project(pyproject)["name"])]
        if dist.version_file is not None:
            target = tmp_path / dist.version_file.relative_to(ROOT)
            target.parent.mkdir(parents=True)
            shutil.copy(dist.version_file, target)
    return tmp_path


def test_a_release_sets_every_version_the_core_ranges_and_the_pins(tmp_path: Path) -> None:
    root = copy_of_the_workspace(tmp_path)
    assert versions.main(["--set", "0.2.0", "--root", str(root)]) == 0
    assert versions.problems(root) == []
    dists = versions.distributions(root)
    assert {d.version for d in dists.values()} == {"0.2.0"}
    assert all(r.endswith("==0.2.0") for r in dists[META].project["dependencies"])
    plugin = dists["elspeth-sink-excel"].project["dependencies"]
    assert any(r.startswith("elspeth-core>=0.2,<0.3") for r in plugin), plugin


def test_the_check_names_the_file_of_a_stale_pin_and_write_derives_it(tmp_path: Path) -> None:
    root = copy_of_the_workspace(tmp_path)
    about = root / "packages/elspeth-reports/src/elspeth_reports/__about__.py"
    about.write_text(about.read_text().replace(str(VERSION), "0.1.7"))
    assert versions.problems(root) == [
        f"packages/elspeth-reports/src/elspeth_reports/__about__.py: elspeth-reports is at 0.1.7, {CORE} at {VERSION}",
        f"packages/elspeth/pyproject.toml: pins elspeth-reports=={VERSION}, it is at 0.1.7",
    ]
    versions.write_meta(root)
    assert versions.problems(root) == [
        f"packages/elspeth-reports/src/elspeth_reports/__about__.py: elspeth-reports is at 0.1.7, {CORE} at {VERSION}"
    ]


def test_an_extras_stale_pin_is_named_and_write_derives_it(tmp_path: Path) -> None:
    root = copy_of_the_workspace(tmp_path)
    meta = root / "packages/elspeth/pyproject.toml"
    meta.write_text(meta.read_text().replace(f'"elspeth-source-parquet=={VERSION}"', '"elspeth-source-parquet==0.0.9"'))
    assert versions.problems(root) == [
        f"packages/elspeth/pyproject.toml: pins elspeth-source-parquet==0.0.9, it is at {VERSION}"
    ]
    versions.write_meta(root)
    assert versions.problems(root) == []


def test_a_distribution_with_a_static_version_is_reported(tmp_path: Path) -> None:
    root = copy_of_the_workspace(tmp_path)
    new = root / "packages/elspeth-new/pyproject.toml"
    new.parent.mkdir()
    core = 'dependencies = ["elspeth-core>=0.1,<0.2"]'
    new.write_text(f'[project]\nname = "elspeth-new"\nversion = "{VERSION}"\n{core}\n')
    assert versions.problems(root) == [
        'packages/elspeth-new/pyproject.toml: the version must come from one file: dynamic = ["version"] and '
        "[tool.hatch.version] path"
    ]


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
