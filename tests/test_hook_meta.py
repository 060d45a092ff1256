"""Meta-tests, as datasette has them: every hook is documented, argument by argument, and tested.

They fail when someone adds a hookspec (to core or to the experiment orchestrator), an argument to
one, or a plugin protocol, without documenting it in ``docs/plugin-hooks.md``; and when no test module
implements or calls a hook in its code (a mention in a comment, docstring or message does not count).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import elspeth.hookspecs
import elspeth.protocols
import elspeth_experiment.hookspecs
import elspeth_experiment.protocols

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugin-hooks.md"
SPEC_MODULES = (elspeth.hookspecs, elspeth_experiment.hookspecs)
PROTOCOL_MODULES = (elspeth.protocols, elspeth_experiment.protocols)


def hookspecs(module: ModuleType) -> dict[str, Callable[..., Any]]:
    marker = f"{elspeth.hookspecs.PROJECT}_spec"
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and hasattr(value, marker) and value.__module__ == module.__name__
    }


HOOKS = {name: func for module in SPEC_MODULES for name, func in hookspecs(module).items()}


def sections(text: str, level: str) -> dict[str, str]:
    """Heading text to body, for headings of exactly ``level`` (``##`` or ``###``)."""
    out: dict[str, str] = {}
    title: str | None = None
    body: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"^(#+) (.*)$", line) if not in_code else None
        if heading and len(heading.group(1)) <= len(level):
            if title is not None:
                out[title] = "\n".join(body)
            title = heading.group(2).strip() if heading.group(1) == level else None
            body = []
        elif title is not None:
            body.append(line)
    if title is not None:
        out[title] = "\n".join(body)
    return out


@pytest.fixture(scope="module")
def doc_sections() -> dict[str, str]:
    return sections(DOCS.read_text(encoding="utf-8"), "##")


def test_both_hookspec_modules_have_hooks() -> None:
    # guards the introspection below: a change of pluggy's marker would otherwise make every test vacuous
    for module in SPEC_MODULES:
        assert hookspecs(module), f"no hookspecs found in {module.__name__}"
    assert {"register_sinks", "run_finished", "register_row_plugins"} <= set(HOOKS)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_heading(hook: str, doc_sections: dict[str, str]) -> None:
    assert hook in doc_sections, f"docs/plugin-hooks.md has no '## {hook}' section"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_argument_is_documented(hook: str, doc_sections: dict[str, str]) -> None:
    body = doc_sections.get(hook, "")
    for arg in inspect.signature(HOOKS[hook]).parameters:
        assert re.search(rf"^- `{arg}` \(`[^`]+`\): \S", body, re.MULTILINE), (
            f"'## {hook}' in docs/plugin-hooks.md does not document argument {arg!r} "
            f"as a '- `{arg}` (`TYPE`): what it is' line"
        )


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_section_says_when_it_fires_and_has_an_example(hook: str, doc_sections: dict[str, str]) -> None:
    body = doc_sections.get(hook, "")
    assert "**When it fires:**" in body
    assert "**Returns:**" in body
    assert re.search(rf"```python\n(?:.*\n)*?def {hook}\(", body), f"'## {hook}' has no example implementing it"


def test_no_heading_documents_a_hook_that_does_not_exist(doc_sections: dict[str, str]) -> None:
    hook_like = {title for title in doc_sections if re.fullmatch(r"[a-z_]+", title)}
    assert hook_like - set(HOOKS) == set()


def protocols(module: ModuleType) -> dict[str, type]:
    found = {}
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type) and getattr(value, "_is_protocol", False):
            found[name] = value
    return found


PROTOCOLS = {name: cls for module in PROTOCOL_MODULES for name, cls in protocols(module).items()}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_plugin_protocol_and_its_methods_are_documented(name: str) -> None:
    body = sections(DOCS.read_text(encoding="utf-8"), "###").get(name)
    assert body is not None, f"docs/plugin-hooks.md has no '### {name}' section"
    cls = PROTOCOLS[name]
    members = [m for m in vars(cls) if not m.startswith("_") and (callable(vars(cls)[m]) or m in cls.__annotations__)]
    for member in members:
        assert f"`{member}" in body, f"'### {name}' does not mention `{member}`"


def modules_with_tests() -> list[Path]:
    files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("packages/*/tests/**/test_*.py")]
    here = Path(__file__).resolve()
    return [f for f in files if f.resolve() != here and "fixtures" not in f.relative_to(ROOT).parts]


def names_in_code(source: str) -> frozenset[str]:
    """The names a module's code defines, reads, calls or passes as ``specname=``: never its comments or strings."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg == "specname" and isinstance(node.value, ast.Constant):
            found.add(str(node.value.value))
    return frozenset(found)


@functools.cache
def names_in_test_modules() -> dict[Path, frozenset[str]]:
    return {f: names_in_code(f.read_text(encoding="utf-8")) for f in modules_with_tests()}


def test_only_code_counts_as_a_use_of_a_hook() -> None:
    mentioned = '''
"""Tests of register_sinks."""
# register_sinks is tested elsewhere
def test_it():
    assert "register_sinks" in message
'''
    assert "register_sinks" not in names_in_code(mentioned)
    for used in (
        "@hookimpl\ndef register_sinks(register): ...",
        "pm.hook.register_sinks(register=r)",
        "@hookimpl(specname='register_sinks')\ndef sinks(register): ...",
    ):
        assert "register_sinks" in names_in_code(used), used


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_is_used_in_the_code_of_a_test_module(hook: str) -> None:
    users = [f for f, names in names_in_test_modules().items() if hook in names]
    assert users, (
        f"no test module (under tests/ or packages/*/tests/) implements or calls the hook {hook!r} in its code "
        "(a mention in a comment, docstring or string does not count); write a test for it"
    )
