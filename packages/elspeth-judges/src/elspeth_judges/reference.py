"""``reference_match``: each response scored 1 or 0 against the row's reference answer, with no LLM call.

Methods:
- ``exact``: the response equals the reference (surrounding whitespace aside; ``case_sensitive``);
- ``normalized``: equal after Unicode NFKC, case folding, punctuation turned into spaces, the
  articles *a*, *an*, *the* dropped and whitespace collapsed (SQuAD's answer normalization, except
  that punctuation separates words: "Eiffel-Tower" matches "eiffel tower");
- ``regex``: the reference is a regular expression, searched in the response (``fullmatch`` to
  require the whole response);
- ``numeric``: the response's first (or ``last``) number is within ``tolerance`` (absolute) or
  ``relative_tolerance`` (of the reference) of the reference number.

A row whose reference is empty, or not a number (``numeric``), or not a valid pattern (``regex``), gets
a score of None (missing) and the reason under ``reference_errors``: a broken reference is not a
wrong answer.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import LLMResponse, Row

__all__ = ["ReferenceMatch", "normalize"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans(string.punctuation, " " * len(string.punctuation))
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def normalize(text: str) -> str:
    """``text`` as the ``normalized`` method compares it (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text.translate(_PUNCTUATION))
    return " ".join(_ARTICLES.sub(" ", text).split())


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (thousands separators allowed), in order."""
    found = []
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        if token and any(ch.isdigit() for ch in token):
            found.append(float(token.replace(",", "")))
    return found


class ReferenceOptions(BaseModel):
    """Options of ``reference_match``."""

    model_config = ConfigDict(extra="forbid")

    reference_column: str = Field(description="the datasource column holding each row's reference answer")
    method: Literal["exact", "normalized", "regex", "numeric"] = Field("normalized", description="how to compare")
    case_sensitive: bool = Field(True, description="exact: whether case matters")
    fullmatch: bool = Field(False, description="regex: the pattern must match the whole response (stripped)")
    tolerance: float = Field(0.0, ge=0, description="numeric: the absolute difference allowed")
    relative_tolerance: float = Field(
        0.0, ge=0, description="numeric: the difference allowed, as a share of the reference"
    )
    number: Literal["first", "last"] = Field("first", description="numeric: which number of the response counts")
    criteria: list[str] | None = Field(None, description="score only these criteria' responses (default: all)")
    score_field: str = Field("scores", description="the record metric for the scores per criterion")
    flag_field: str = Field("score_flags", description="the record metric for the match flags per criterion")


class ReferenceMatch:
    """Scores each response 1 (matches the reference) or 0, by the chosen method."""

    name = "reference_match"
    Options = ReferenceOptions

    def __init__(self, options: ReferenceOptions) -> None:
        self.options = options

    def setup(self, setup: Any) -> None:
        """Refuse a reference column the datasource does not have, before any row."""
        column = self.options.reference_column
        if column not in setup.columns:
            setup.checker.add(
                (*setup.loc, "options", "reference_column"),
                f"the datasource has no column '{column}' (its columns: {', '.join(setup.columns) or 'none'})",
            )

    def process_row(self, row: Row, responses: Mapping[str, LLMResponse]) -> dict[str, Any]:
        """``scores`` and ``score_flags`` per criterion (and ``reference_errors`` for a broken reference)."""
        opts = self.options
        reference = row.data.get(opts.reference_column)
        scores: dict[str, float | None] = {}
        errors: dict[str, str] = {}
        for criterion, response in responses.items():
            if opts.criteria is not None and criterion not in opts.criteria:
                continue
            try:
                scores[criterion] = 1.0 if self.matches(response.content, reference) else 0.0
            except ValueError as exc:
                scores[criterion] = None
                errors[criterion] = str(exc)
        out: dict[str, Any] = {
            opts.score_field: scores,
            opts.flag_field: {c: s == 1.0 for c, s in scores.items() if s is not None},
        }
        if errors:
            out["reference_errors"] = errors
        return out

    def matches(self, response: str, reference: Any) -> bool:
        """Whether ``response`` matches ``reference``; ``ValueError`` when the reference cannot be used."""
        opts = self.options
        if reference is None or (isinstance(reference, str) and not reference.strip()):
            raise ValueError(f"row has no reference in '{opts.reference_column}'")
        target = str(reference)
        if opts.method == "exact":
            if opts.case_sensitive:
                return response.strip() == target.strip()
            return response.strip().casefold() == target.strip().casefold()
        if opts.method == "normalized":
            return normalize(response) == normalize(target)
        if opts.method == "regex":
            try:
                pattern = re.compile(target)
            except re.error as exc:
                raise ValueError(f"reference {target!r} is not a regular expression: {exc}") from None
            found = pattern.fullmatch(response.strip()) if opts.fullmatch else pattern.search(response)
            return found is not None
        return self._numeric(response, target)

    def _numeric(self, response: str, target: str) -> bool:
        opts = self.options
        try:
            want = float(target.replace(",", "").strip())
        except ValueError:
            raise ValueError(f"reference {target!r} is not a number") from None
        found = numbers_in(response)
        if not found:
            return False
        got = found[0] if opts.number == "first" else found[-1]
        allowed = max(opts.tolerance, opts.relative_tolerance * abs(want))
        return abs(got - want) <= allowed
