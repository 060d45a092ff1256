"""The gates CI runs: lint, types, tests, isolated(dist), and the offline example.

python3 -m pip install nox uv
python3 -m nox -s lint types tests isolated    # what .ci/run runs
python3 -m nox -s "isolated(dist='elspeth-sink-excel')"
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ROOT / "packages"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "types", "tests", "isolated"]
nox.options.error_on_external_run = True

TEST_TOOLS = ["pytest>=8", "hatchling>=1.25", "pip"]


def _project(folder: Path) -> dict[str, object]:
    data = tomllib.loads((folder / "pyproject.toml").read_text())
    project: dict[str, object] = data["project"]
    return project


def _distributions() -> dict[str, Path]:
    found = {}
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        found[str(_project(pyproject.parent)["name"])] = pyproject.parent
    return found


DISTS = _distributions()
# The meta-package has no code of its own; it is checked by installing everything it pins.
CODE_DISTS = [name for name in DISTS if name != "elspeth"]


def _local_requirements(dist: str) -> list[str]:
    """The distributions of this repository that ``dist`` or its tests depend on (built as wheels beside it).

    A test extra may name a sibling (a plugin's tests run a real orchestrator with it); the
    distribution itself must still install with only its own dependencies, which it does here too.
    """
    deps = [*(_project(DISTS[dist]).get("dependencies") or []), *_test_extras(DISTS[dist])]
    names = [re.split(r"[<>=!~;\[ ]", str(d), maxsplit=1)[0] for d in deps]
    return list(dict.fromkeys(n for n in names if n in DISTS and n != "elspeth-core"))


def _test_extras(folder: Path) -> list[str]:
    extras = _project(folder).get("optional-dependencies") or {}
    assert isinstance(extras, dict)
    return list(extras.get("test", []))


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """One strict mypy run over every distribution's src/."""
    session.install("mypy>=1.10", "types-PyYAML", "pyarrow-stubs", *[f"-e{DISTS[d]}" for d in CODE_DISTS])
    session.run("mypy", *[str(DISTS[d] / "src") for d in CODE_DISTS])


@nox.session
def tests(session: nox.Session) -> None:
    """Every test of every distribution, with the whole workspace installed editable."""
    extras = [req for d in CODE_DISTS for req in _test_extras(DISTS[d])]
    session.install(*TEST_TOOLS, *extras, *[f"-e{DISTS[d]}" for d in CODE_DISTS])
    session.run("pytest", *session.posargs)


def _build_wheels(session: nox.Session, names: list[str], out: Path) -> dict[str, Path]:
    wheels = {}
    for name in names:
        before = set(out.glob("*.whl"))
        session.run("uv", "build", "--quiet", "--wheel", "--out-dir", str(out), str(DISTS[name]))
        (wheel,) = set(out.glob("*.whl")) - before
        wheels[name] = wheel
    return wheels


@nox.session
@nox.parametrize("dist", list(DISTS))
def isolated(session: nox.Session, dist: str) -> None:
    """One distribution from built wheels with only elspeth-core and elspeth-testing beside it.

    Proves the split is real: the distribution installs with its own dependencies, is listed as
    healthy by ``elspeth plugins list``, and passes its own tests without the rest of the repo.
    """
    out = Path(session.create_tmp()) / "wheels"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    if dist == "elspeth":
        names = [*CODE_DISTS, "elspeth"]
        names.remove("elspeth-testing")
    else:
        names = list(dict.fromkeys(["elspeth-core", "elspeth-testing", *_local_requirements(dist), dist]))
    session.install("uv", *TEST_TOOLS)
    wheels = _build_wheels(session, names, out)
    # one resolution: the test extras may name sibling distributions (elspeth-testing), which only the wheels provide
    session.install(*[str(w) for w in wheels.values()], *_test_extras(DISTS[dist]))
    listing = json.loads(session.run("elspeth", "plugins", "list", "--json", silent=True) or "[]")
    mine = [p for p in listing if p["distribution"] in names]
    broken = [p for p in mine if p["status"] != "ok"]
    if broken:
        session.error(f"broken plugins after installing {', '.join(names)}: {broken}")
    owners = {p["distribution"] for p in mine}
    for name in names:
        entry_points = _project(DISTS[name]).get("entry-points") or {}
        assert isinstance(entry_points, dict)
        if entry_points.get("elspeth") and name not in owners:
            session.error(f"{name} is installed but `elspeth plugins list` shows none of its plugins")
    session.log(f"healthy: {len(mine)} plugins from {', '.join(sorted(owners))}")
    tests_dir = DISTS[dist] / "tests"
    if dist != "elspeth" and tests_dir.is_dir() and any(tests_dir.glob("test_*.py")):
        session.run("pytest", str(tests_dir), "-p", "no:cacheprovider", *session.posargs)


@nox.session
def example(session: nox.Session) -> None:
    """Install the default set and run the offline example."""
    session.install(*[f"{DISTS[d]}" for d in ("elspeth-core", "elspeth-orchestrator-experiment")])
    session.run("elspeth", "run", "examples/quickstart/settings.yaml")
