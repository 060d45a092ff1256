"""The plugins an orchestrator's options name, checked with the settings' own plugins in one pass.

An orchestrator whose options reference plugins of its sub-domains (the experiment orchestrator's
row plugins, aggregators, validators) lists them with a static ``plugin_references(options)``. When
the settings already have a problem (an unknown ``llm``, say), the run stops before the orchestrator
checks its options; :func:`check_references` then still resolves every name they reference, so one
``elspeth validate`` reports every unknown plugin in the file, not only the first kind.

Example (an orchestrator)::

    @staticmethod
    def plugin_references(options: MyOptions) -> list[PluginReference]:
        return [PluginReference("row_plugin", ref, ("row_plugins", i)) for i, ref in enumerate(options.row_plugins)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from elspeth.config._yaml import Checker, Loc
    from elspeth.config.settings import PluginRef, Prompts
    from elspeth.registry import Registry, Resolved

__all__ = ["PluginReference", "check_ahead", "check_references"]


class PluginReference(NamedTuple):
    """A plugin named in an orchestrator's options: its domain, the reference, and where it is in the options."""

    domain: str
    ref: PluginRef
    loc: Loc


def check_references(registry: Registry, orchestrator: Resolved | None, checker: Checker) -> None:
    """Resolve every plugin the orchestrator's options reference, recording each problem at its place."""
    if orchestrator is None:
        return
    lister = getattr(orchestrator.info.factory, "plugin_references", None)
    if lister is None:
        return
    for domain, ref, loc in lister(orchestrator.options):
        registry.resolve(domain, ref, (*orchestrator.loc, "options", *loc), checker)


def check_ahead(registry: Registry, orchestrator: Resolved | None, prompts: Prompts | None, checker: Checker) -> None:
    """What later checks would find, found now: the orchestrator's plugin names and the settings' templates.

    For settings that already have a problem, so that one pass reports every problem in the file. A
    template is checked for syntax and for what the sandbox refuses (its fields are checked against the
    columns later, once the datasource is open).
    """
    from elspeth.templates import TemplateError, compile_template

    check_references(registry, orchestrator, checker)
    for key in ("system", "user"):
        source = getattr(prompts, key, None) if prompts is not None else None
        if source:
            try:
                compile_template(source)
            except TemplateError as exc:
                checker.add(("prompts", key), str(exc))
