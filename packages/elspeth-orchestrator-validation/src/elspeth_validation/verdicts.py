"""The verdict a rule plugin returns to reject a row, importable without loading the orchestrator."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rejected"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """Returned by a rule plugin's ``process`` to reject the row, saying why (and, if it is one, which column).

    Example::

        from elspeth_validation import Rejected


        def process(self, data):
            if " " in data["name"]:
                return Rejected("'name' has a space", column="name")
            return None

    Attributes:
        reason: a short sentence saying which rule the row breaks.
        column: the column at fault, if there is one.

    """

    reason: str
    column: str | None = None
