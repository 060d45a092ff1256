"""Turning any Python value into something a workbook cell can hold safely, and sizing columns to fit."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from elspeth import neutralise_formula
from elspeth_sink_excel.sheets import to_text

__all__ = ["MAX_CELL_CHARS", "MAX_WIDTH", "MIN_WIDTH", "cell_converter", "column_widths"]

MAX_CELL_CHARS = 32_767
"""Excel's limit on the text in one cell; longer text is cut and marked."""

MIN_WIDTH = 8.0
MAX_WIDTH = 60.0
_TRUNCATED = "… [truncated]"
_SAMPLE_ROWS = 2_000

# XML 1.0 forbids these control characters; openpyxl refuses them, so they become U+FFFD.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text(value: str, guard: str | None) -> str:
    # XML readers turn CR and CRLF into LF, so a workbook cannot keep a CR: say so by writing LF ourselves.
    text = _ILLEGAL.sub("\ufffd", value.replace("\r\n", "\n").replace("\r", "\n"))
    if guard is not None:
        text = neutralise_formula(text, guard)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - len(_TRUNCATED)] + _TRUNCATED
    return text


def cell_converter(guard: str | None) -> Callable[[Any], Any]:
    """A function making any value fit for a cell; strings are neutralised with ``guard`` unless it is None.

    Numbers and booleans stay what they are (NaN and infinities, which a workbook cannot hold, become
    empty); lists and mappings become JSON text; times with a time zone become ISO 8601 text.
    """

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | Decimal):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            return _text(value, guard)
        if isinstance(value, dt.datetime | dt.time):
            return _text(value.isoformat(), guard) if value.tzinfo is not None else value
        if isinstance(value, dt.date):
            return value
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return _text(to_text(sorted(value, key=str) if isinstance(value, set | frozenset) else value), guard)
        return _text(str(value), guard)

    return convert


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    text = value if isinstance(value, str) else str(value)
    widest = 0
    for line in text[: int(MAX_WIDTH) * 4].splitlines() or [""]:
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line[: int(MAX_WIDTH) * 2])
        widest = max(widest, width)
    return widest


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[float]:
    """A width per column that fits its header and (a sample of) its values, between the bounds.

    Header text gets room for the filter button; wide (East Asian) characters count double.
    """
    widths = [_display_width(h) + 3 for h in headers]
    for row in rows[:_SAMPLE_ROWS]:
        for i, value in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], _display_width(value))
    return [min(MAX_WIDTH, max(MIN_WIDTH, w + 2.0)) for w in widths]
