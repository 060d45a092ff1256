"""Where two settings documents differ, as dotted paths (what a resume refuses to mix)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["settings_diff"]


def settings_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two settings documents differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(settings_diff(old[key], new[key], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in settings_diff(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix or "(the whole file)"]
