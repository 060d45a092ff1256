"""Prompt templates: sandboxed Jinja2 with strict undefined, checked against the columns before any call."""

from __future__ import annotations

import jinja2
import pytest

from elspeth import Checker, TemplateError, check_template, compile_template
from elspeth.config import SourceMap
from elspeth.templates import _environment


def test_renders_row_values_without_html_escaping() -> None:
    template = compile_template("Review of {{ product }}: <q>{{ review }}</q>")
    assert template.render({"product": "kettle", "review": "fast & quiet"}) == "Review of kettle: <q>fast & quiet</q>"


def test_fields_are_the_variables_the_template_reads() -> None:
    template = compile_template(
        "{{ a }} {% for x in items %}{{ x.name }}{% endfor %} {{ b | upper }} {% set c = 1 %}{{ c }}"
    )
    assert template.fields == frozenset({"a", "items", "b"})
    assert template.missing(["a", "b"]) == ["items"]


def test_a_missing_field_is_an_error_not_an_empty_string() -> None:
    template = compile_template("Hello {{ name }}!")
    with pytest.raises(TemplateError, match="template field missing: 'name' is undefined"):
        template.render({"other": 1})


def test_a_missing_attribute_is_an_error_too() -> None:
    template = compile_template("{{ row.title }}")
    with pytest.raises(TemplateError, match="template field missing"):
        template.render({"row": {"body": "x"}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ text.__class__.__mro__ }}",
        "{{ text.__class__.__base__.__subclasses__() }}",
        "{{ lookup.__init__.__globals__ }}",
        "{{ items.append(3) }}{{ items }}",
        "{% set _ = lookup.update({'x': 1}) %}{{ lookup }}",
    ],
)
def test_sandbox_refuses_internals_and_mutation(source: str) -> None:
    items = [1, 2]
    lookup = {"k": "v"}
    # refused when the template is compiled (so `elspeth validate` fails, not every row) ...
    with pytest.raises(TemplateError, match=r"the sandbox refuses.*: every row would fail when it is rendered$"):
        compile_template(source)
    # ... and the sandbox itself still refuses it at render: the compile-time check is not the only guard
    with pytest.raises(jinja2.exceptions.SecurityError, match=r"^access to attribute .* is unsafe\.$"):
        _environment().from_string(source).render({"text": "hi", "items": items, "lookup": lookup})
    assert items == [1, 2]
    assert lookup == {"k": "v"}


def test_syntax_error_names_the_line_within_the_template() -> None:
    with pytest.raises(TemplateError, match=r"template syntax error on its line 3: .*"):
        compile_template("line one\nline two {{ ok }}\nline three {{ broken ")


def test_unknown_filter_is_a_syntax_error() -> None:
    with pytest.raises(TemplateError, match="template syntax error on its line 1: No filter named 'shout'"):
        compile_template("{{ a | shout }}")


def checker() -> Checker:
    return Checker(SourceMap("settings.yaml", {("prompts", "user"): 12, ("prompts",): 10}))


def test_check_template_reports_fields_that_are_not_columns_with_their_place() -> None:
    found = checker()
    template = check_template(
        "{{ product }} {{ reviw }} {{ criterion }}",
        ("prompts", "user"),
        found,
        ["product", "review"],
        extra=["criterion"],
    )
    assert template is not None
    assert [str(p) for p in found.problems] == [
        "prompts.user: template uses 'reviw', which the datasource does not have (its columns: product, review) "
        "(settings.yaml:12)"
    ]


def test_check_template_reports_syntax_errors_with_their_place() -> None:
    found = checker()
    assert check_template("{% if %}", ("prompts", "user"), found, ["a"]) is None
    (problem,) = found.problems
    assert str(problem).startswith("prompts.user: template syntax error on its line 1")
    assert problem.line == 12


def test_check_template_with_no_columns_says_so() -> None:
    found = checker()
    check_template("{{ a }}", ("prompts", "system"), found, [])
    assert "(its columns: none)" in str(found.problems[0])
    assert found.problems[0].line == 10  # the nearest parent in the file
