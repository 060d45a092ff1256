"""Turning an LLM reply into output columns: the raw text, or values picked out of its JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MISSING", "ReplyError", "parse_reply", "pick", "split_path"]

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


class ReplyError(ValueError):
    """A reply that is not JSON, or lacks a key a column needs."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def split_path(path: str) -> list[str]:
    """``"a.b.0"`` as ``["a", "b", "0"]``; raises ValueError for an empty part."""
    parts = path.split(".")
    if not path or any(not part for part in parts):
        raise ValueError(f"'{path}' is not a key or dotted path (no part may be empty)")
    return parts


def parse_reply(content: str) -> Any:
    """The JSON value in ``content``: the whole reply, a fenced ```json block, or the outermost ``{...}``.

    Raises:
        ReplyError: no JSON value could be read.

    """
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                pass
        raise ReplyError(f"the reply is not JSON ({first.msg} at line {first.lineno} column {first.colno})") from None


def pick(value: Any, path: str) -> Any:
    """The value at ``path`` in ``value``, or :data:`MISSING`.

    A key holding dots is found as it is before the path is split; a numeric part indexes a list.
    """
    if isinstance(value, Mapping) and path in value:
        return value[path]
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            if not -len(value) <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value
