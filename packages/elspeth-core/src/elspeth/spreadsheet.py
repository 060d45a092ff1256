"""Spreadsheet safety: neutralise cells that a spreadsheet program would run as a formula.

A CSV or workbook cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (or a tab, carriage return or
line feed, which some programs skip before looking for those) is taken as a formula when the file is
opened in Excel, LibreOffice or Google Sheets. An LLM reply or an input column is untrusted text, so the
``csv`` and ``excel`` sinks prefix such cells with a guard character (an apostrophe by default), which
makes the cell plain text.

The rules, deliberately simple so that a user can predict them:

- Only strings are touched. Numbers, booleans and empty cells are left as they are, so ``-5`` written
  as a number stays a number. A *string* ``"-5"`` is neutralised like any other string starting with
  ``-``: telling harmless numeric text from ``-2+3`` or ``-cmd|...`` is the parsing game that payloads
  exploit, and numbers that should be numbers should reach the sink as numbers. (The builtin ``csv``
  datasource reads every value as text, so a ``-5`` read from a CSV file is written back as ``'-5``.)
- A string is dangerous when its first character is one of :data:`TRIGGERS` (``= + - @``, tab, CR, LF,
  and their full-width forms U+FF1D, U+FF0B, U+FF0D, U+FF20, which some East Asian locales turn into
  ASCII), *or* when that character follows a run of leading whitespace, byte-order marks (U+FEFF) or
  zero-width characters, as in ``" =1+1"``: some programs trim those before deciding.
- The guard goes in front of the whole string, before any such leading characters, so a written cell
  never starts with a trigger. A string that already starts with the guard is not dangerous, so
  neutralising twice changes nothing.
- The guard must be one character that is neither a trigger nor whitespace (those would not protect).

Example::

    >>> from elspeth.spreadsheet import neutralise_formula
    >>> neutralise_formula("@SUM(1)")
    "'@SUM(1)"
    >>> neutralise_formula(-5)
    -5
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "DEFAULT_GUARD",
    "TRIGGERS",
    "SanitizeOptions",
    "is_formula_like",
    "neutralise_formula",
    "warn_unsanitised",
]

DEFAULT_GUARD = "'"

TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""Characters that start a formula (or are skipped before one) in some spreadsheet program."""

# Skipped before looking for a trigger: what a program may trim, or what a reader cannot see.
_INVISIBLE = frozenset("\ufeff\u200b\u200c\u200d\u2060")

T = TypeVar("T")


def is_formula_like(text: str) -> bool:
    """True if a spreadsheet program could take ``text`` as a formula (see the module's rules)."""
    for char in text:
        if char in TRIGGERS:
            return True
        if not (char.isspace() or char in _INVISIBLE):
            return False
    return False


def neutralise_formula(value: T, guard: str = DEFAULT_GUARD) -> T:
    """Return ``value`` with ``guard`` in front if it is a string a spreadsheet could run; else unchanged.

    Args:
        value: any cell value; only strings are ever changed.
        guard: the character to put in front (an apostrophe by default).

    Example::

        neutralise_formula("@SUM(1)")  # "'@SUM(1)"
        neutralise_formula("fine")  # "fine"

    """
    if isinstance(value, str) and is_formula_like(value):
        return guard + value  # type: ignore[return-value]  # a str in, a str out
    return value


def check_guard(guard: str) -> str:
    """Return ``guard`` if it can protect a cell; raise ValueError saying why not otherwise."""
    if len(guard) != 1:
        raise ValueError(f"must be exactly one character, got {guard!r}")
    if guard in TRIGGERS or guard.isspace() or guard in _INVISIBLE:
        raise ValueError(f'{guard!r} would not protect a cell: use a visible character such as "\'"')
    return guard


def warn_unsanitised(logger: logging.Logger, sink: str, path: object) -> None:
    """Log that ``sink`` writes ``path`` without formula neutralisation (an explicit user choice)."""
    logger.warning(
        "sink '%s' writes %s with sanitize_formulas: false; cells starting with =, +, -, @ may run as "
        "formulas when the file is opened in a spreadsheet program",
        sink,
        path,
    )


class SanitizeOptions(BaseModel):
    """The formula-neutralisation options every spreadsheet-bound sink offers; inherit them in ``Options``."""

    sanitize_formulas: bool = Field(
        True,
        description="prefix cells that start with =, +, -, @, tab, CR or LF with the guard, so spreadsheet "
        "programs show them as text; turning it off logs a warning",
    )
    sanitize_guard: str = Field(DEFAULT_GUARD, description="the one character put in front of a dangerous cell")

    @field_validator("sanitize_guard")
    @classmethod
    def _valid_guard(cls, value: str) -> str:
        return check_guard(value)
