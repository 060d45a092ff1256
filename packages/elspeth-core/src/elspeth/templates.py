"""Prompt templates: Jinja2 in a sandbox, strict about undefined fields, checked before any LLM call."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from elspeth.config._yaml import Checker, Loc

__all__ = ["PromptTemplate", "TemplateError", "compile_template", "refused_by_sandbox"]

# what the sandbox refuses at render, so that a template using it fails `validate`, not every row
_FRAME_ATTRIBUTES = frozenset({"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "mro"})
_MUTATING_METHODS = frozenset(
    {"add", "append", "appendleft", "clear", "difference_update", "discard", "extend", "extendleft", "insert"}
    | {"pop", "popitem", "popleft", "remove", "reverse", "rotate", "setdefault", "sort", "update"}
    | {"symmetric_difference_update"}
)


class TemplateError(Exception):
    """A template could not be compiled or rendered."""


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class PromptTemplate:
    """A compiled template and the fields it reads.

    Attributes:
        source: the template text.
        fields: every top-level variable the template uses.

    """

    source: str
    fields: frozenset[str]
    _template: jinja2.Template

    def render(self, values: Mapping[str, Any]) -> str:
        """Render with ``values``; a missing field raises :class:`TemplateError` naming it."""
        try:
            return self._template.render(values)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template field missing: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template failed: {exc}") from None

    def missing(self, available: Collection[str]) -> list[str]:
        """Fields the template needs that ``available`` does not provide."""
        return sorted(self.fields.difference(available))


def refused_by_sandbox(ast: jinja2.nodes.Template) -> list[str]:
    """What in a parsed template the sandbox would refuse at render, each with its line in the template.

    Attributes and string subscripts starting with ``_`` (``{{ x.__class__ }}``, ``{{ x['_y'] }}``),
    frame and code attributes, and calls of methods that modify a list, dict or set. Ordinary fields,
    attributes, filters and tests are never refused.
    """
    found: list[str] = []
    for node in ast.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem, jinja2.nodes.Call)):
        name: Any = None
        if isinstance(node, jinja2.nodes.Getattr):
            name = node.attr
        elif isinstance(node, jinja2.nodes.Getitem) and isinstance(node.arg, jinja2.nodes.Const):
            name = node.arg.value
        if isinstance(name, str) and (name.startswith("_") or name in _FRAME_ATTRIBUTES):
            found.append(f"line {node.lineno}: '{name}' is an attribute the sandbox refuses")
        call = node.node if isinstance(node, jinja2.nodes.Call) else None
        if isinstance(call, jinja2.nodes.Getattr) and call.attr in _MUTATING_METHODS:
            found.append(f"line {node.lineno}: '{call.attr}()' changes its object, which the sandbox refuses")
    return found


def compile_template(source: str) -> PromptTemplate:
    """Compile ``source`` in the sandboxed environment.

    Raises:
        TemplateError: the text is not a valid Jinja2 template, or uses what the sandbox refuses at
            render (:func:`refused_by_sandbox`); the message names the template's line.

    """
    env = _environment()
    try:
        ast = env.parse(source)
        template = env.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on its line {exc.lineno}: {exc.message}") from None
    refused = refused_by_sandbox(ast)
    if refused:
        raise TemplateError(f"template {'; '.join(refused)}: every row would fail when it is rendered")
    return PromptTemplate(source, frozenset(meta.find_undeclared_variables(ast)), template)


def check_template(
    source: str, loc: Loc, checker: Checker, available: Collection[str], extra: Collection[str] = ()
) -> PromptTemplate | None:
    """Compile ``source`` and check that every field it uses is a column (or in ``extra``).

    Problems go to ``checker`` at ``loc``; returns None if the template does not compile.
    """
    try:
        template = compile_template(source)
    except TemplateError as exc:
        checker.add(loc, str(exc))
        return None
    missing = template.missing({*available, *extra})
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        checker.add(
            loc,
            f"template uses {names}, which the datasource does not have "
            f"(its columns: {', '.join(available) or 'none'})",
        )
    return template
