"""Checking before any row that every field a processor or utility reads is there when it runs.

A plugin that reads fields by name declares them in ``needs_fields``: a sequence of names, or a mapping
from the option that names them to the names (so that a problem is reported at that option's line)::

    class TextCleaning:
        @property
        def needs_fields(self) -> dict[str, tuple[str, ...]]:
            return {"columns": tuple(self.options.columns or ())}

A plugin that adds fields declares them in ``adds_fields``; a later step may read them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from elspeth.config._yaml import Checker, Loc

if TYPE_CHECKING:
    from elspeth.config.settings import LoadedSettings
    from elspeth.registry import Resolved

__all__ = ["check_needed_fields", "check_preprocessing", "ignored_settings", "needed_fields"]

Step = tuple[Loc, str, Any]
"""A plugin in the order it runs: where its reference is in the settings, how to name it, the plugin."""


def needed_fields(plugin: Any) -> dict[str | None, list[str]]:
    """The fields ``plugin`` reads (its ``needs_fields``), by the option that names them (None: not said).

    Raises:
        TypeError: ``needs_fields`` is neither a sequence of names nor a mapping of option to names.

    """
    declared = getattr(plugin, "needs_fields", None)
    if not declared:
        return {}
    if isinstance(declared, str):
        return {None: [declared]}
    if isinstance(declared, Mapping):
        return {str(option): _names(names, plugin) for option, names in declared.items() if names}
    return {None: _names(declared, plugin)}


def _names(names: Any, plugin: Any) -> list[str]:
    if isinstance(names, str):
        return [names]
    if not isinstance(names, Iterable):
        raise TypeError(
            f"{type(plugin).__name__}.needs_fields must be field names, or a mapping of option to field names, "
            f"not {type(names).__name__}"
        )
    return [str(n) for n in names]


def check_needed_fields(columns: Sequence[str], steps: Iterable[Step], checker: Checker) -> list[str]:
    """Check each step's ``needs_fields`` against the fields a row has when that step runs.

    A row has the datasource's ``columns`` plus the ``adds_fields`` of every step before. Each missing
    field is reported at the plugin's option that names it, with the closest existing field.

    Args:
        columns: the datasource's columns (or whatever the first step sees).
        steps: the plugins in the order they run, as ``(loc, label, plugin)``, for example
            ``(("processors", 0), "processor 'pii_redaction'", plugin)``.
        checker: collects the problems.

    Returns:
        the fields a row has after every step.

    """
    fields = list(columns)
    for loc, label, plugin in steps:
        for option, names in needed_fields(plugin).items():
            missing = [n for n in dict.fromkeys(names) if n not in fields]
            if not missing:
                continue
            close = [m for n in missing for m in difflib.get_close_matches(n, fields, n=1, cutoff=0.6)]
            hint = f"; did you mean {', '.join(repr(c) for c in dict.fromkeys(close))}?" if close else ""
            where = (*loc, "options", option) if option else (*loc, "options")
            checker.add(
                where,
                f"{label} reads {', '.join(repr(m) for m in missing)}, which the rows do not have when it runs "
                f"(their fields: {', '.join(fields) or 'none'}){hint}",
            )
        for name in getattr(plugin, "adds_fields", ()) or ():
            if name not in fields:
                fields.append(str(name))
    return fields


def check_preprocessing(
    columns: Sequence[str], processors: Sequence[tuple[str, Any]], utilities: Sequence[Any], checker: Checker
) -> list[str]:
    """:func:`check_needed_fields` for the settings' ``processors``, then ``utilities``, in the order they run."""
    steps: list[Step] = [(("processors", i), f"processor '{name}'", p) for i, (name, p) in enumerate(processors)]
    for i, utility in enumerate(utilities):
        if utility is not None:
            steps.append((("utilities", i), f"utility '{getattr(utility, 'name', type(utility).__name__)}'", utility))
    return check_needed_fields(columns, steps, checker)


def ignored_settings(loaded: LoadedSettings, orchestrator: Resolved) -> list[str]:
    """Warnings for settings the chosen orchestrator ignores, each naming its line.

    ``prompts`` is ignored by an orchestrator whose class says ``uses_prompts = False`` (the validation
    orchestrator); one that does not say is taken to use them.
    """
    if loaded.settings.prompts is None or getattr(orchestrator.info.factory, "uses_prompts", True):
        return []
    message = (
        f"orchestrator '{orchestrator.info.name}' uses no prompts: `prompts` is ignored (remove it, or choose an "
        "orchestrator that renders prompts)"
    )
    return [str(loaded.source_map.problem(("prompts",), message))]
