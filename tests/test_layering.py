"""Layers point one way, checked on every first-party source file by its syntax tree (nothing is imported).

(a) No module of elspeth-core imports another distribution's module, and no host module of core (anything
    outside ``elspeth.builtins``) imports a builtin plugin module: plugins depend on the host, never back.
(b) No module of another distribution imports ``elspeth.<anything>``, or a name from ``elspeth`` that is
    not in ``elspeth.__all__``: first-party plugins use exactly the public API a third party would.
(d) A distribution that uses another plugin distribution (llm-azure uses llm-openai's SDK plumbing)
    depends on it in its pyproject and imports only the names in that package's ``__all__``.
(c) Core's modules import each other without a cycle, counting imports inside functions too. Imports
    under ``if TYPE_CHECKING:`` are left out: they never run, so they cannot make a cycle at run time.

Only ``src/`` counts: tests may reach into the modules they test.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = "elspeth"
BUILTINS = "elspeth.builtins"


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is."""

    module: str  # the importing module
    target: str  # the module imported (for ``from M import n``: M, or M.n when that is a module)
    names: tuple[str, ...]  # for ``from M import a, b``: the names; empty for ``import M``
    where: str  # file:line

    def __str__(self) -> str:
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.where}: {self.module} imports {self.target}{names}"


def module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, tuple[str, Path]]:
    """Every first-party module: name to (distribution folder, file)."""
    found = {}
    for src in sorted(ROOT.glob("packages/*/src")):
        for path in sorted(src.rglob("*.py")):
            found[module_name(src, path)] = (src.parent.name, path)
    return found


MODULES = source_files()


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, except what sits under ``if TYPE_CHECKING:`` (its ``else`` does count)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in _walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, (), where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative imports are banned by ruff; resolve them anyway
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            names = tuple(alias.name for alias in node.names)
            submodules = [n for n in names if f"{base}.{n}" in MODULES]
            found += [Import(module, f"{base}.{n}", (n,), where) for n in submodules]
            rest = tuple(n for n in names if f"{base}.{n}" not in MODULES)
            if rest or not submodules:
                found.append(Import(module, base, rest, where))
    return found


IMPORTS = {name: imports_of(name, path) for name, (_, path) in MODULES.items()}


def distribution_of(module: str) -> str | None:
    """The folder of the distribution that holds ``module`` (or its package), if first-party."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        owner = MODULES.get(".".join(parts[:i]))
        if owner is not None:
            return owner[0]
    return None


def public_api() -> set[str]:
    """``elspeth.__all__``, read from core's ``__init__.py`` (one list of string constants)."""
    init = ROOT / "packages/elspeth-core/src/elspeth/__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return set(value)
    raise AssertionError("elspeth/__init__.py has no __all__")


def core_violations(imports: dict[str, list[Import]]) -> list[str]:
    bad = []
    for module, found in imports.items():
        if distribution_of(module) != "elspeth-core":
            continue
        for imp in found:
            owner = distribution_of(imp.target)
            if owner is not None and owner != "elspeth-core":
                bad.append(f"{imp}: core must not import {owner}")
            elif owner == "elspeth-core" and not _is_builtin(module) and _is_builtin(imp.target):
                bad.append(f"{imp}: core's host must not import a builtin plugin module")
    return bad


def _is_builtin(module: str) -> bool:
    return module == BUILTINS or module.startswith(f"{BUILTINS}.")


def plugin_violations(imports: dict[str, list[Import]], api: set[str]) -> list[str]:
    bad = []
    for module, found in imports.items():
        owner = distribution_of(module)
        if owner in (None, "elspeth-core"):
            continue
        for imp in found:
            if imp.target.startswith(f"{CORE}."):
                bad.append(f"{imp}: import it from `elspeth` (export it in elspeth.__all__ if it is missing)")
            elif imp.target == CORE and not imp.names:
                continue  # `import elspeth`: attribute uses are the public API's business
            elif imp.target == CORE:
                private = sorted(set(imp.names) - api)
                if private:
                    bad.append(f"{imp}: {', '.join(private)} not in elspeth.__all__")
    return bad


def package_api(package: str) -> set[str]:
    """A first-party package's ``__all__``, read from its ``__init__.py``."""
    _, init = MODULES[package]
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def declared(folder: str) -> set[str]:
    """The canonical names of the distributions ``packages/<folder>`` depends on."""
    project = tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() for d in project.get("dependencies", [])}


def sibling_violations(imports: dict[str, list[Import]]) -> list[str]:
    bad = []
    for module, found in imports.items():
        owner = distribution_of(module)
        if owner in (None, "elspeth-core"):
            continue
        for imp in found:
            other = distribution_of(imp.target)
            if other in (None, owner, "elspeth-core"):
                continue
            package = imp.target.split(".")[0]
            if other not in declared(owner):
                bad.append(f"{imp}: {owner} does not depend on {other}")
            if imp.target != package:
                bad.append(f"{imp}: import it from `{package}` (a public name of {other})")
            elif set(imp.names) - package_api(package):
                bad.append(
                    f"{imp}: {', '.join(sorted(set(imp.names) - package_api(package)))} not in {package}.__all__"
                )
    return bad


def core_cycles(imports: dict[str, list[Import]]) -> list[list[str]]:
    """Every cycle (as one path per strongly connected component) among core's modules."""
    graph: dict[str, set[str]] = {}
    for module, found in imports.items():
        if distribution_of(module) == "elspeth-core":
            graph[module] = {i.target for i in found if i.target in MODULES and i.target != module}
    cycles = []
    for component in _components(graph):
        if len(component) > 1:
            cycles.append(_one_cycle(graph, component))
    return cycles


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.add(top)
                        if top == node:
                            break
                    out.append(component)
            elif child not in graph:
                continue
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, for the message."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & component):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover - a component of >1 has one


def where_cycle(imports: dict[str, list[Import]], cycle: list[str]) -> str:
    steps = []
    for a, b in itertools.pairwise(cycle):
        (first,) = [i for i in imports[a] if i.target == b][:1]
        steps.append(str(first))
    return " -> ".join(cycle) + "\n      " + "\n      ".join(steps)


def test_the_walk_sees_every_distribution_and_the_api() -> None:
    # guards the checks below: a walk that found nothing would make every one of them pass
    owners = {owner for owner, _ in MODULES.values()}
    assert {"elspeth-core", "elspeth-testing", "elspeth-signed", "elspeth-processors", "elspeth-retrieval"} <= owners
    assert {"elspeth.cli", "elspeth.store", "elspeth_signed.plugin"} <= set(MODULES)
    assert {"hookimpl", "Registrar", "PluginContext"} <= public_api()


def test_core_imports_no_other_distribution_and_its_host_no_builtin_plugin() -> None:
    bad = core_violations(IMPORTS)
    assert not bad, "layering runs backwards:\n" + "\n".join(bad)


def test_other_distributions_import_only_elspeths_public_names() -> None:
    bad = plugin_violations(IMPORTS, public_api())
    assert not bad, "a first-party distribution reaches past elspeth.__all__:\n" + "\n".join(bad)


def test_a_distribution_uses_another_only_through_its_public_names_and_a_dependency() -> None:
    bad = sibling_violations(IMPORTS)
    assert not bad, "a first-party distribution reaches into another:\n" + "\n".join(bad)


def test_core_has_no_import_cycle() -> None:
    cycles = core_cycles(IMPORTS)
    assert not cycles, "import cycles among core's modules:\n" + "\n".join(where_cycle(IMPORTS, c) for c in cycles)


def fake(module: str, dist: str, source: str) -> dict[str, list[Import]]:
    MODULES.setdefault(module, (dist, Path(__file__)))
    return {module: imports_of(module, _write(source))}


def _write(source: str) -> Path:
    path = ROOT / ".pytest-layering-probe.py"
    path.write_text(source, encoding="utf-8")
    return path


@pytest.fixture
def probe() -> Iterator[None]:
    saved = dict(MODULES)
    yield
    MODULES.clear()
    MODULES.update(saved)
    (ROOT / ".pytest-layering-probe.py").unlink(missing_ok=True)


@pytest.mark.usefixtures("probe")
def test_each_check_fails_on_the_import_it_forbids() -> None:
    api = public_api()
    assert core_violations(fake("elspeth.probe", "elspeth-core", "import elspeth_signed.sink\n"))
    assert core_violations(
        fake("elspeth.probe2", "elspeth-core", "def f():\n    from elspeth.builtins.sinks import x\n")
    )
    assert not core_violations(fake("elspeth.builtins.probe", "elspeth-core", "from elspeth.builtins.sinks import x\n"))
    assert plugin_violations(fake("elspeth_x.a", "elspeth-x", "from elspeth.llm_errors import LLMError\n"), api)
    assert plugin_violations(fake("elspeth_x.b", "elspeth-x", "from elspeth import not_public_at_all\n"), api)
    assert not plugin_violations(fake("elspeth_x.c", "elspeth-x", "from elspeth import hookimpl\n"), api)
    openai = "elspeth-llm-openai"
    assert sibling_violations(
        fake("elspeth_llm_azure.probe", "elspeth-llm-azure", "from elspeth_llm_openai.sdk import send\n")
    )
    assert sibling_violations(fake("elspeth_reports.probe", "elspeth-reports", "from elspeth_llm_openai import send\n"))
    assert not sibling_violations(
        fake("elspeth_llm_azure.ok", "elspeth-llm-azure", "from elspeth_llm_openai import send\n")
    )
    assert openai in declared("elspeth-llm-azure")
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from elspeth.registry import Registry\n"
    assert not plugin_violations(fake("elspeth_x.d", "elspeth-x", typed), api)


@pytest.mark.usefixtures("probe")
def test_a_cycle_through_an_import_inside_a_function_is_found() -> None:
    imports = {
        **fake("elspeth.cyc_a", "elspeth-core", "import elspeth.cyc_b\n"),
        **fake("elspeth.cyc_b", "elspeth-core", "def f():\n    from elspeth.cyc_c import g\n"),
        **fake("elspeth.cyc_c", "elspeth-core", "from elspeth import cyc_a\n"),
    }
    (cycle,) = core_cycles(imports)
    assert cycle == ["elspeth.cyc_a", "elspeth.cyc_b", "elspeth.cyc_c", "elspeth.cyc_a"]
    typed = {**imports, **fake("elspeth.cyc_c", "elspeth-core", "if TYPE_CHECKING:\n    from elspeth import cyc_a\n")}
    assert core_cycles(typed) == []


if __name__ == "__main__":  # pragma: no cover - a quick report without pytest
    sys.exit(pytest.main([__file__, "-q"]))
