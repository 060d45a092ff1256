"""Security levels: how sensitive the data is, and what each plugin is cleared to receive.

``UNOFFICIAL < OFFICIAL < OFFICIAL_SENSITIVE < PROTECTED < SECRET`` (the Australian PSPF order).

- The **data's level** is the highest of the settings' ``security_level`` and every datasource's.
- Every LLM client, middleware and sink has a **clearance**: its reference's ``security_level``, else
  the plugin class's ``default_clearance`` (clients that send data nowhere, such as ``mock``, are
  cleared for everything), else ``UNOFFICIAL``. Undeclared means cleared for the least: a run whose
  data is above that is refused, before any work, naming the plugin and both levels.
- The level is recorded in the run metadata and on every artifact the sinks write.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth.config._yaml import Checker, Loc

__all__ = ["SecurityLevel", "check_clearance", "clearance", "parse_level", "refusal"]


class SecurityLevel(IntEnum):
    """An ordered security classification."""

    UNOFFICIAL = 0
    OFFICIAL = 1
    OFFICIAL_SENSITIVE = 2
    PROTECTED = 3
    SECRET = 4

    def __str__(self) -> str:
        return self.name


_ALIASES = {
    "PUBLIC": SecurityLevel.UNOFFICIAL,
    "INTERNAL": SecurityLevel.OFFICIAL,
    "SENSITIVE": SecurityLevel.OFFICIAL_SENSITIVE,
    "OFFICIAL:SENSITIVE": SecurityLevel.OFFICIAL_SENSITIVE,
    "CONFIDENTIAL": SecurityLevel.PROTECTED,
}


def parse_level(value: Any) -> SecurityLevel:
    """Read a level from its name (any case, ``-`` or space for ``_``) or one of the aliases.

    Raises:
        ValueError: not a level; the message lists the valid ones.
    """
    if isinstance(value, SecurityLevel):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_").replace(" ", "_")
        if key in SecurityLevel.__members__:
            return SecurityLevel[key]
        if key.replace("_", ":") in _ALIASES or key in _ALIASES:
            return _ALIASES.get(key) or _ALIASES[key.replace("_", ":")]
    names = ", ".join(level.name for level in SecurityLevel)
    raise ValueError(f"unknown security level {value!r}; use one of {names}")


def clearance(declared: SecurityLevel | None, plugin_class: Any) -> SecurityLevel:
    """A plugin's clearance: as declared in the settings, else its class's ``default_clearance``, else the lowest."""
    if declared is not None:
        return declared
    default = getattr(plugin_class, "default_clearance", None)
    return parse_level(default) if default is not None else SecurityLevel.UNOFFICIAL


def refusal(
    domain: str, name: str, cleared: SecurityLevel, data: SecurityLevel, source: str, advice: str | None = None
) -> str | None:
    """The message refusing to send ``data``-level data to a plugin ``cleared`` below it, or None if allowed."""
    if cleared >= data:
        return None
    advice = advice or f"set its security_level to {data} or higher if it may receive such data"
    return f"{domain} '{name}' is cleared for {cleared} but the data is {data} (from {source}); {advice}"


def check_clearance(
    domain: str,
    name: str,
    declared: SecurityLevel | None,
    plugin_class: Any,
    data: tuple[SecurityLevel, str],
    loc: Loc,
    checker: Checker,
    *,
    why: str = "",
    advice: str | None = None,
) -> bool:
    """Report at ``loc`` a recipient cleared below the data; the one clearance check of a run.

    Args:
        domain: the plugin's domain, for the message.
        name: the plugin's name.
        declared: the ``security_level`` its reference declares, if any.
        plugin_class: the plugin's class (its ``default_clearance`` applies when nothing is declared).
        data: the data's level and what set it.
        loc: where the problem is reported.
        checker: collects problems.
        why: said before the refusal, e.g. that a declared clearance does not carry over.
        advice: what to do, instead of "set its security_level ...".

    Returns:
        True when the recipient is cleared.

    """
    level, source = data
    problem = refusal(domain, name, clearance(declared, plugin_class), level, source, advice)
    if problem is None:
        return True
    checker.add(loc, f"{why}{problem}")
    return False
