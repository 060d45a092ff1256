"""The source keeps its shape: no module over 400 lines, no function over 60 (issue 11, point 5).

Counted over every distribution's ``src/`` by line and by syntax tree, as a maintainer reads it: a
function's length runs from its ``def`` (decorators left out) to its last line, docstring included.
A module that outgrows the limit is split by what its parts do; a function, by the steps it takes.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE = 400
MAX_FUNCTION = 60
SOURCES = sorted(ROOT.glob("packages/*/src/**/*.py"))


def test_there_is_source_to_measure() -> None:
    assert len(SOURCES) > 100


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in SOURCES if (n := p.read_text("utf-8").count("\n")) > MAX_MODULE}
    assert long == {}, f"split these modules (lines): {long}"


def test_no_function_over_60_lines() -> None:
    long = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}, f"split these functions (lines): {long}"
