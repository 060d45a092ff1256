"""The validation orchestrator's options (``orchestrator.options`` in the settings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth import PluginRef

__all__ = ["Range", "ValidationOptions"]


class Range(BaseModel):
    """Inclusive bounds of a numeric column; either may be left out."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = Field(None, description="smallest allowed value")
    max: float | None = Field(None, description="largest allowed value")

    @model_validator(mode="after")
    def _some_bound(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class ValidationOptions(BaseModel):
    """The rules every row is checked against, and where rejected rows go.

    ``patterns``, ``ranges`` and ``allowed`` judge values that are present; an empty or missing value
    passes them (list the column in ``required`` to reject it). ``unique`` ignores empty values.
    """

    model_config = ConfigDict(extra="forbid")

    required: list[str] = Field(default_factory=list, description="columns that must have a non-empty value")
    patterns: dict[str, str] = Field(
        default_factory=dict, description="column to a regular expression its value must match (see pattern_match)"
    )
    pattern_match: Literal["full", "search"] = Field(
        "full", description="'full': the whole value must match; 'search': a match anywhere in it is enough"
    )
    ranges: dict[str, Range] = Field(
        default_factory=dict, description="column to {min, max}: its value must be a number within them"
    )
    allowed: dict[str, list[Any]] = Field(
        default_factory=dict, description="column to the values it may hold (compared as text)"
    )
    unique: list[str] = Field(
        default_factory=list,
        description="columns whose values may appear only once; later repeats are rejected (keeps one "
        "entry per distinct value in memory)",
    )
    rules: list[PluginRef] = Field(
        default_factory=list,
        description="processor plugins used as rules, opened before the first row: a row is rejected when one "
        "raises, or returns False, a reason (text) or elspeth_validation.Rejected(reason, column); a returned "
        "row (a mapping) passes",
    )
    all_reasons: bool = Field(True, description="report every broken rule of a row, not only the first")
    rejects_path: str | None = Field(
        None,
        description="also write rejected rows with their rule and reason to this CSV, relative to the output folder",
    )
    sanitize_formulas: bool = Field(
        True, description="in rejects_path, prefix cells a spreadsheet would run as formulas with an apostrophe"
    )
    reorder_window: int | None = Field(
        None,
        ge=1,
        description="rows that may finish ahead of the oldest unfinished one (default: 4 x concurrency, at least 64)",
    )
    chunk_size: int = Field(1000, ge=1, description="rows per chunk of the on-disk spools the sinks read")
    spool_dir: str | None = Field(
        None, description="folder for the temporary spools, relative to the output folder (default: the output folder)"
    )
