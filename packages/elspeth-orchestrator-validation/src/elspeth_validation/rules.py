"""The built-in rules, compiled once from the options, and the verdicts of rule plugins."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elspeth import Checker
from elspeth_validation.options import ValidationOptions
from elspeth_validation.verdicts import Rejected

__all__ = ["BuiltinRules", "Rejected", "Unique", "Violation", "compile_rules", "verdict"]

Loc = tuple[str | int, ...]
Check = Callable[[Mapping[str, Any]], "Violation | None"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which (``required``, ``pattern``, a plugin's name, ...), on which column, and why."""

    rule: str
    reason: str
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"rule": self.rule, "column": self.column, "reason": self.reason}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _required(column: str) -> Check:
    def check(data: Mapping[str, Any]) -> Violation | None:
        if _empty(data.get(column)):
            return Violation("required", f"'{column}' is empty" if column in data else f"'{column}' is missing", column)
        return None

    return check


def _pattern(column: str, pattern: re.Pattern[str], full: bool) -> Check:
    match = pattern.fullmatch if full else pattern.search

    def check(data: Mapping[str, Any]) -> Violation | None:
        value = data.get(column)
        if _empty(value) or match(str(value)):
            return None
        return Violation("pattern", f"'{column}' value {_shown(value)} does not match /{pattern.pattern}/", column)

    return check


def _range(column: str, low: float | None, high: float | None) -> Check:
    def check(data: Mapping[str, Any]) -> Violation | None:
        value: Any = data.get(column)
        if _empty(value):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return Violation("range", f"'{column}' value {_shown(value)} is not a number", column)
        if math.isnan(number) or (low is not None and number < low) or (high is not None and number > high):
            bounds = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
            return Violation("range", f"'{column}' value {_shown(value)} is outside {bounds}", column)
        return None

    return check


def _allowed(column: str, values: Sequence[Any]) -> Check:
    texts = frozenset(str(v) for v in values)
    listed = ", ".join(map(str, values))

    def check(data: Mapping[str, Any]) -> Violation | None:
        value = data.get(column)
        if _empty(value) or str(value) in texts:
            return None
        return Violation("allowed", f"'{column}' value {_shown(value)} is not one of: {listed}", column)

    return check


class Unique:
    """Rejects a value of a column seen before; run in input order, so the first occurrence is kept."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self._seen: dict[str, dict[str, str]] = {c: {} for c in columns}

    def __call__(self, row_id: str, data: Mapping[str, Any]) -> list[Violation]:
        """Violations for the repeated values of ``data``; records its new values otherwise."""
        found = []
        for column in self.columns:
            value = data.get(column)
            if _empty(value):
                continue
            seen = self._seen[column]
            key = str(value)
            first = seen.setdefault(key, row_id)
            if first != row_id:
                found.append(
                    Violation("unique", f"'{column}' value {_shown(value)} repeats that of row {first}", column)
                )
        return found


@dataclass
class BuiltinRules:
    """The per-row checks (uniqueness apart, which needs input order) compiled from the options."""

    checks: list[Check]
    unique: Unique | None
    all_reasons: bool

    def __call__(self, data: Mapping[str, Any]) -> list[Violation]:
        """Every violation of ``data`` (or only the first, without ``all_reasons``)."""
        found = []
        for check in self.checks:
            violation = check(data)
            if violation is not None:
                found.append(violation)
                if not self.all_reasons:
                    break
        return found


def _known(column: str, fields: Sequence[str], loc: Loc, checker: Checker) -> bool:
    if column in fields:
        return True
    close = difflib.get_close_matches(column, fields, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    checker.add(loc, f"column '{column}' is not in the datasource (its columns: {', '.join(fields) or 'none'}){hint}")
    return False


def compile_rules(options: ValidationOptions, fields: Sequence[str], base: Loc, checker: Checker) -> BuiltinRules:
    """Check every column the options name against ``fields`` and compile the rules; problems go to ``checker``."""
    checks: list[Check] = []
    for i, column in enumerate(options.required):
        if _known(column, fields, (*base, "required", i), checker):
            checks.append(_required(column))
    for column, source in options.patterns.items():
        loc = (*base, "patterns", column)
        known = _known(column, fields, loc, checker)
        try:
            pattern = re.compile(source)
        except re.error as exc:
            checker.add(loc, f"not a valid regular expression: {exc}")
            continue
        if known:
            checks.append(_pattern(column, pattern, options.pattern_match == "full"))
    for column, bounds in options.ranges.items():
        if _known(column, fields, (*base, "ranges", column), checker):
            checks.append(_range(column, bounds.min, bounds.max))
    for column, values in options.allowed.items():
        loc = (*base, "allowed", column)
        if not values:
            checker.add(loc, "list at least one allowed value")
        elif _known(column, fields, loc, checker):
            checks.append(_allowed(column, values))
    unique = [c for i, c in enumerate(options.unique) if _known(c, fields, (*base, "unique", i), checker)]
    return BuiltinRules(checks, Unique(unique) if unique else None, options.all_reasons)


def verdict(name: str, returned: Any) -> Violation | None:
    """What a rule plugin's return value says: :class:`Rejected`, False or a non-empty string reject the row.

    Anything else passes: None, True, and a mapping, which is a processor handing back the row (a row with a
    column named ``valid`` is a row, not a verdict). A rule may also reject by raising ``ValidationFailed``.
    """
    if isinstance(returned, Rejected):
        return Violation(name, returned.reason or f"rejected by {name}", returned.column)
    if returned is False:
        return Violation(name, f"rejected by {name}")
    if isinstance(returned, str):
        return Violation(name, returned) if returned.strip() else None
    return None
