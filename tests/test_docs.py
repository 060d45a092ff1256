"""Meta-tests of the public API, as datasette has them: what ``elspeth`` exports and what the docs name agree.

They fail when a name is added to ``elspeth.__all__`` without a ``### `name``` entry in
``docs/api.md``; when that page (or any page of docs/ or a package README) names an ``elspeth...``
object that does not exist; when the top-level module exports something outside ``__all__`` or lists
a name it cannot give; and when a distribution defines hookspecs that the hook meta-tests
(``tests/test_hook_meta.py``, every hook and argument in docs/plugin-hooks.md) do not cover.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import elspeth

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"
HOOKS_PAGE = ROOT / "docs" / "plugin-hooks.md"
PAGES = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("packages/*/README.md")])
# `elspeth.Name`, `elspeth.module.name`, `elspeth_experiment.protocols.SetupContext`: a dotted name in backquotes
DOTTED = re.compile(r"`((?:elspeth|elspeth_[a-z_]+)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# entry-point group names (`elspeth.commands`) look like dotted names but are not objects
ENTRY_POINT_GROUPS = {
    group
    for pyproject in [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("tests/fixtures/**/pyproject.toml")]
    for group in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("entry-points", {})
}


def api_entries(text: str) -> dict[str, str]:
    """Each ``### `name``` heading of the API page, with the text under it."""
    entries: dict[str, str] = {}
    current: str | None = None
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"^(#+) (.*)$", line)
        if heading:
            title = heading.group(2).strip()
            named = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", title)
            current = named.group(1) if heading.group(1) == "###" and named else None
            assert heading.group(1) != "###" or named, f"docs/api.md: '### {title}' is not a single `name`"
            if current is not None:
                assert current not in entries, f"docs/api.md documents {current} twice"
                entries[current] = ""
        elif current is not None:
            entries[current] += line + "\n"
    return entries


@pytest.fixture(scope="module")
def documented() -> dict[str, str]:
    return api_entries(API.read_text(encoding="utf-8"))


def test_the_hook_reference_links_the_api_reference() -> None:
    assert "](api.md)" in HOOKS_PAGE.read_text(encoding="utf-8"), "docs/plugin-hooks.md does not link docs/api.md"


def test_the_api_page_parser_sees_entries_and_refuses_a_heading_that_is_not_a_name() -> None:
    assert api_entries("## Group\n\n### `Row`\n\nOne row.\n```python\n### not a heading\n```\n") == {
        "Row": "\nOne row.\n```python\n### not a heading\n```\n"
    }
    with pytest.raises(AssertionError, match="not a single `name`"):
        api_entries("### Row and Table\n")


@pytest.mark.parametrize("name", sorted(elspeth.__all__))
def test_every_public_name_is_documented(name: str, documented: dict[str, str]) -> None:
    assert name in documented, f"elspeth.{name} is in elspeth.__all__ but docs/api.md has no '### `{name}`' entry"
    assert documented[name].strip(), f"docs/api.md: the entry for `{name}` says nothing"


def test_the_api_page_documents_only_what_elspeth_exports(documented: dict[str, str]) -> None:
    exported = set(elspeth.__all__) | set(elspeth._DEPRECATED)
    assert set(documented) - exported == set(), "docs/api.md documents names elspeth does not export"


def test_all_is_one_sorted_list_without_duplicates() -> None:
    assert len(set(elspeth.__all__)) == len(elspeth.__all__), "elspeth.__all__ lists a name twice"
    assert list(elspeth.__all__) == sorted(elspeth.__all__), "keep elspeth.__all__ sorted"


def top_level_public_names(module: ModuleType) -> set[str]:
    """The public names the module binds at import (its own imports and definitions), plus its lazy names."""
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    bound: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
    return {name for name in bound | set(module._LAZY) if not name.startswith("_")} - {"annotations"}


def test_all_is_exactly_what_the_module_gives() -> None:
    # "importlib" and typing helpers are imports of the module itself, not API
    own = {"importlib", "TYPE_CHECKING", "Any"}
    assert top_level_public_names(elspeth) - own == set(elspeth.__all__), (
        "elspeth binds public names that are not in __all__, or __all__ lists names it never imports"
    )


@pytest.mark.parametrize("name", sorted(elspeth.__all__))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(elspeth, name) is not None
    assert name in dir(elspeth)


def test_every_lazy_name_is_also_imported_for_type_checkers() -> None:
    """Each ``_LAZY`` name is imported under ``TYPE_CHECKING`` from the same module, so mypy sees what runtime gives."""
    tree = ast.parse(Path(str(elspeth.__file__)).read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    typed = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert typed == elspeth._LAZY


def resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted`` and read the rest as attributes; raises if any part is missing."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(dotted)


def dotted_names() -> list[tuple[str, str]]:
    found = set()
    for page in PAGES:
        for match in DOTTED.finditer(page.read_text(encoding="utf-8")):
            if match.group(1) not in ENTRY_POINT_GROUPS:
                found.add((str(page.relative_to(ROOT)), match.group(1)))
    return sorted(found)


def test_the_docs_name_some_dotted_objects() -> None:
    names = {name for _, name in dotted_names()}
    assert {"elspeth.Registrar", "elspeth.hookimpl", "elspeth_testing.llm_server"} <= names
    assert "elspeth.commands" in ENTRY_POINT_GROUPS


@pytest.mark.parametrize(("page", "dotted"), dotted_names())
def test_every_dotted_name_in_the_docs_exists(page: str, dotted: str) -> None:
    try:
        resolve(dotted)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{page} names `{dotted}`, which does not exist ({exc})")


def test_a_dotted_name_that_does_not_exist_is_caught() -> None:
    with pytest.raises(AttributeError):
        resolve("elspeth.NoSuchName")
    with pytest.raises(AttributeError):
        resolve("elspeth.llm_errors.LLMNoSuchError")
    assert resolve("elspeth.llm_errors.LLMTimeout") is elspeth.LLMTimeout


def modules_defining_hookspecs() -> set[str]:
    """Every module under packages/*/src that decorates a function with ``@hookspec``, found by AST."""
    found = set()
    for path in ROOT.glob("packages/*/src/**/*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                getattr(d, "id", None) == "hookspec" or getattr(getattr(d, "func", None), "id", None) == "hookspec"
                for d in node.decorator_list
            ):
                src = next(p for p in path.parents if p.name == "src")
                found.add(".".join(path.relative_to(src).with_suffix("").parts))
                break
    return found


def test_the_hook_meta_tests_cover_every_distribution_that_defines_hookspecs() -> None:
    spec_source = (ROOT / "tests" / "test_hook_meta.py").read_text(encoding="utf-8")
    (assigned,) = [
        node.value
        for node in ast.parse(spec_source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SPEC_MODULES"
    ]
    covered = {ast.unparse(element) for element in assigned.elts}  # type: ignore[attr-defined]
    defined = modules_defining_hookspecs()
    assert "elspeth.hookspecs" in defined
    assert defined - covered == set(), (
        "these modules define hookspecs that tests/test_hook_meta.py does not check against docs/plugin-hooks.md: "
        "add them to its SPEC_MODULES"
    )
