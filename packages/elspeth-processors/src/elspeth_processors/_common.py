"""What the processing plugins share: choosing the columns they work on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["chosen_columns"]


def chosen_columns(data: Mapping[str, Any], columns: Sequence[str] | None, plugin: str) -> list[str]:
    """The string-valued fields of ``data`` a processor works on.

    Args:
        data: the row's values.
        columns: the processor's ``columns`` option; None means every field whose value is a string.
        plugin: the processor's name, for the error message.

    Raises:
        ValueError: ``columns`` names a field the row does not have.

    """
    if columns is None:
        return [key for key, value in data.items() if isinstance(value, str)]
    missing = [c for c in columns if c not in data]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise ValueError(
            f"{plugin}: options.columns names {names}, which the row does not have "
            f"(its fields: {', '.join(map(str, data)) or 'none'})"
        )
    return [c for c in columns if isinstance(data[c], str)]
