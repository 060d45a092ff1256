"""One version per distribution, written once: read it, check that every distribution is in step, derive the rest.

Each code distribution under ``packages/`` writes its version once, as ``__version__ = "X.Y.Z"`` in its
package's ``__init__.py`` (or ``__about__.py``, where a module of the package needs the version and
importing ``__init__`` would be a cycle); its pyproject says ``dynamic = ["version"]`` and
``[tool.hatch.version] path = "src/<package>/__init__.py"``, so hatchling reads it from there and
``<package>.__version__`` costs no ``importlib.metadata`` look-up. The ``elspeth`` meta-package has
no code: its version and exact pins are derived from the others by ``--write``.

Usage (from the repository root)::

    python tools/versions.py              # each distribution and its version
    python tools/versions.py --check      # exit 1, naming each file that is out of step
    python tools/versions.py --write      # derive the meta-package's version and pins
    python tools/versions.py --set 0.2.0  # a release: every version, the elspeth-core ranges, the pins
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
META = "elspeth"
CORE = "elspeth-core"
_DUNDER = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
_CORE_RANGE = re.compile(r'"elspeth-core>=0\.\d+,<0\.\d+')
_PIN = re.compile(r'"(elspeth(?:-[a-z0-9-]+)?)==[^"]+"')


@dataclass(frozen=True)
class Dist:
    """One distribution of the repository: its pyproject's table and where its version is written."""

    name: str
    folder: Path
    project: dict[str, Any]
    version_file: Path | None
    version: str | None

    @property
    def pyproject(self) -> Path:
        """The distribution's ``pyproject.toml``."""
        return self.folder / "pyproject.toml"


def _read(pyproject: Path) -> Dist:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project: dict[str, Any] = data["project"]
    folder = pyproject.parent
    if "version" not in project.get("dynamic", []):
        return Dist(project["name"], folder, project, None, project.get("version"))
    path = data.get("tool", {}).get("hatch", {}).get("version", {}).get("path")
    if path is None:
        return Dist(project["name"], folder, project, None, None)
    version_file = folder / path
    found = _DUNDER.search(version_file.read_text(encoding="utf-8")) if version_file.is_file() else None
    return Dist(project["name"], folder, project, version_file, found.group(1) if found else None)


def distributions(root: Path = ROOT) -> dict[str, Dist]:
    """Every distribution under ``root/packages``, by name."""
    return {d.name: d for d in map(_read, sorted(root.glob("packages/*/pyproject.toml")))}


def _where(dist: Dist, root: Path) -> str:
    return str(dist.pyproject.relative_to(root))


def _pins(meta: Dist) -> dict[str, str]:
    """The meta-package's exact pins: its dependencies and those of its extras (``elspeth[parquet]``)."""
    pins = {}
    extras = meta.project.get("optional-dependencies", {}).values()
    for requirement in [*meta.project.get("dependencies", []), *(r for extra in extras for r in extra)]:
        name, _, version = str(requirement).partition("==")
        pins[name.strip()] = version.strip()
    return pins


def _code_problems(dist: Dist, version: str, root: Path) -> list[str]:
    where = _where(dist, root)
    if dist.version_file is None:
        return [f'{where}: the version must come from one file: dynamic = ["version"] and [tool.hatch.version] path']
    if dist.version is None:
        return [f'{dist.version_file.relative_to(root)}: no line `__version__ = "X.Y.Z"`']
    problems = []
    if dist.version != version:
        problems.append(f"{dist.version_file.relative_to(root)}: {dist.name} is at {dist.version}, {CORE} at {version}")
    if dist.name != CORE:
        minor = int(version.split(".")[1])
        wanted = f"{CORE}>=0.{minor},<0.{minor + 1}"
        if not any(str(r).replace(" ", "").startswith(wanted) for r in dist.project.get("dependencies", [])):
            problems.append(f"{where}: {dist.name} must depend on {wanted}")
    return problems


def problems(root: Path = ROOT) -> list[str]:
    """What is out of step, each naming the file to change; empty when every version agrees."""
    dists = distributions(root)
    if CORE not in dists or META not in dists:
        return [f"{root / 'packages'}: no {CORE} or no {META} distribution"]
    version = dists[CORE].version
    if version is None:
        return _code_problems(dists[CORE], "", root)
    found = [p for d in dists.values() if d.name != META for p in _code_problems(d, version, root)]
    meta = dists[META]
    if meta.version != version:
        found.append(f"{_where(meta, root)}: the meta-package is at {meta.version}, {CORE} at {version}")
    for name, pinned in _pins(meta).items():
        if name not in dists:
            found.append(f"{_where(meta, root)}: pins {name}, which is not a distribution in packages/")
        elif pinned != dists[name].version:
            found.append(f"{_where(meta, root)}: pins {name}=={pinned or '(nothing)'}, it is at {dists[name].version}")
    if CORE not in _pins(meta):
        found.append(f"{_where(meta, root)}: does not pin {CORE}")
    return found


def write_meta(root: Path = ROOT) -> None:
    """Rewrite the meta-package's version and every exact pin from the distributions' own versions."""
    dists = distributions(root)
    meta = dists[META]
    text = meta.pyproject.read_text(encoding="utf-8")
    text = re.sub(r'^version = "[^"]+"$', f'version = "{dists[CORE].version}"', text, count=1, flags=re.MULTILINE)

    def pin(match: re.Match[str]) -> str:
        name = match.group(1)
        return f'"{name}=={dists[name].version}"' if name in dists else match.group(0)

    meta.pyproject.write_text(_PIN.sub(pin, text), encoding="utf-8")


def set_version(new: str, root: Path = ROOT) -> None:
    """Set every code distribution's version and ``elspeth-core`` range to ``new``'s minor, then the pins."""
    parts = new.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or parts[0] != "0":
        raise SystemExit(f"--set {new}: give a 0.MINOR.PATCH version (after 1.0 the lockstep rule changes)")
    minor = int(parts[1])
    for dist in distributions(root).values():
        if dist.name == META:
            continue
        if dist.version_file is None:
            raise SystemExit(f"{_where(dist, root)}: no single-sourced version to set; see tools/versions.py")
        text = dist.version_file.read_text(encoding="utf-8")
        dist.version_file.write_text(_DUNDER.sub(f'__version__ = "{new}"', text), encoding="utf-8")
        text = dist.pyproject.read_text(encoding="utf-8")
        dist.pyproject.write_text(_CORE_RANGE.sub(f'"elspeth-core>=0.{minor},<0.{minor + 1}', text), encoding="utf-8")
    write_meta(root)


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(prog="python tools/versions.py", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 if any version is out of step")
    action.add_argument("--write", action="store_true", help="derive the meta-package's version and pins")
    action.add_argument("--set", metavar="VERSION", help="set every distribution's version (a release)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args = parser().parse_args(argv)
    if args.set:
        set_version(args.set, args.root)
    elif args.write:
        write_meta(args.root)
    elif not args.check:
        for dist in distributions(args.root).values():
            print(f"{dist.name} {dist.version}")
        return 0
    found = problems(args.root)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
