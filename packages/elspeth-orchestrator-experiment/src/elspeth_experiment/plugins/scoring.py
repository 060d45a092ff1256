"""Scores: ``score_extractor`` (row plugin) and ``score_stats`` (aggregator)."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import LLMResponse, Record, Row, inline
from elspeth_experiment.stats.intervals import mean_interval, wilson

__all__ = ["ScoreExtractor", "ScoreStats", "extract_score"]

DEFAULT_PATTERN = r"(?i)\bscore\s*[:=]\s*(-?\d+(?:\.\d+)?)"
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gte": lambda v, t: v >= t,
    "gt": lambda v, t: v > t,
    "lte": lambda v, t: v <= t,
    "lt": lambda v, t: v < t,
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def extract_score(response: LLMResponse, key: str, parse_json: bool, pattern: re.Pattern[str] | None) -> float | None:
    """A response's score: from its metrics, else its JSON content, else the first regex match."""
    if key in response.metrics:
        value = _number(response.metrics[key])
        if value is not None:
            return value
    if parse_json:
        try:
            content = json.loads(response.content)
        except (ValueError, TypeError):
            content = None
        if isinstance(content, Mapping) and key in content:
            value = _number(content[key])
            if value is not None:
                return value
    if pattern is not None:
        match = pattern.search(response.content)
        if match:
            return _number(match.group(1) if match.groups() else match.group(0))
    return None


class ScoreExtractor:
    """Reads a score from each criterion's response and flags whether it passes a threshold."""

    name = "score_extractor"

    class Options(BaseModel):
        """Options of ``score_extractor``."""

        model_config = ConfigDict(extra="forbid")

        key: str = Field("score", description="metric or JSON key holding the score")
        parse_json: bool = Field(True, description="look for `key` in the response parsed as JSON")
        pattern: str | None = Field(
            DEFAULT_PATTERN, description="regular expression whose first group is the score (null to disable)"
        )
        criteria: list[str] | None = Field(None, description="only these criteria (default: all)")
        threshold: float | None = Field(None, description="a score passes when it compares true with this")
        thresholds: dict[str, float] = Field(
            default_factory=dict, description="thresholds per criterion, overriding `threshold` for those criteria"
        )
        threshold_mode: Literal["gte", "gt", "lte", "lt"] = Field("gte", description="how to compare with threshold")
        threshold_modes: dict[str, Literal["gte", "gt", "lte", "lt"]] = Field(
            default_factory=dict, description="comparison per criterion, overriding `threshold_mode`"
        )

        @field_validator("pattern")
        @classmethod
        def _compiles(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"not a valid regular expression: {exc}") from None
            return value

    def __init__(self, options: Options) -> None:
        self.options = options
        self._pattern = re.compile(options.pattern) if options.pattern else None

    @inline
    def process_row(self, row: Row, responses: Mapping[str, LLMResponse]) -> dict[str, Any]:
        """``scores`` per criterion (None when missing) and, with a threshold, ``score_flags``."""
        opts = self.options
        scores: dict[str, float | None] = {}
        for criterion, response in responses.items():
            if opts.criteria is None or criterion in opts.criteria:
                scores[criterion] = extract_score(response, opts.key, opts.parse_json, self._pattern)
        out: dict[str, Any] = {"scores": scores}
        flags: dict[str, bool] = {}
        for criterion, value in scores.items():
            threshold = opts.thresholds.get(criterion, opts.threshold)
            if threshold is not None:
                compare = _COMPARE[opts.threshold_modes.get(criterion, opts.threshold_mode)]
                flags[criterion] = value is not None and compare(value, threshold)
        if flags:
            out["score_flags"] = flags
        return out


def _stats(
    values: Sequence[float], missing: int, flags: Sequence[bool], ddof: int, confidence: float
) -> dict[str, Any]:
    count = len(values)
    stats: dict[str, Any] = {"count": count, "missing": missing}
    if count:
        stats.update(
            mean=statistics.fmean(values),
            median=statistics.median(values),
            std=(statistics.stdev(values) if ddof == 1 else statistics.pstdev(values)) if count > ddof else None,
            min=min(values),
            max=max(values),
        )
    else:
        stats.update(mean=None, median=None, std=None, min=None, max=None)
    interval, method = mean_interval(values, confidence)
    stats["ci"] = list(interval) if interval is not None else None
    stats["ci_level"] = confidence
    stats["ci_method"] = method
    if flags:
        stats["passes"] = sum(flags)
        stats["pass_rate"] = sum(flags) / len(flags)
        rate_ci = wilson(sum(flags), len(flags), confidence)
        stats["pass_rate_ci"] = list(rate_ci) if rate_ci is not None else None
    return stats


class ScoreStats:
    """Per criterion and overall: count, missing, mean with its t-based CI, median, std, min, max, pass rate."""

    name = "score_stats"

    class Options(BaseModel):
        """Options of ``score_stats``."""

        model_config = ConfigDict(extra="forbid")

        source_field: str = Field("scores", description="the record metric holding scores per criterion")
        flag_field: str = Field("score_flags", description="the record metric holding pass flags per criterion")
        ddof: Literal[0, 1] = Field(1, description="1 for the sample standard deviation, 0 for the population's")
        confidence: float = Field(
            0.95, gt=0, lt=1, description="level of the t-based confidence interval of the mean (`ci`)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options

    @inline
    def finalize(self, records: Sequence[Record]) -> dict[str, Any]:
        """Summarise; a missing score counts as not passing in the pass rate."""
        values: dict[str, list[float]] = {}
        missing: dict[str, int] = {}
        flags: dict[str, list[bool]] = {}
        for record in records:
            for criterion, value in (record.metrics.get(self.options.source_field) or {}).items():
                values.setdefault(criterion, [])
                missing.setdefault(criterion, 0)
                if value is None:
                    missing[criterion] += 1
                else:
                    values[criterion].append(float(value))
            for criterion, flag in (record.metrics.get(self.options.flag_field) or {}).items():
                flags.setdefault(criterion, []).append(bool(flag))
        ddof, level = self.options.ddof, self.options.confidence
        per = {c: _stats(values[c], missing[c], flags.get(c, []), ddof, level) for c in values}
        pooled = [v for vs in values.values() for v in vs]
        overall = _stats(pooled, sum(missing.values()), [f for fs in flags.values() for f in fs], ddof, level)
        return {"criteria": per, "overall": overall}
