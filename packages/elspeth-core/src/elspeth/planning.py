"""The plan of a run: every plugin its settings name, resolved, built and checked for clearance and endpoints.

:func:`elspeth.engine.prepare` drives it: resolve every plugin (a wrong name or option is a
ConfigError with its place), refuse a recipient cleared below the data's level before any plugin
is built, build them, then build the LLM pipeline of the run through the one factory that builds
every variant's too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elspeth.config._yaml import Checker
from elspeth.config.settings import LoadedSettings, PluginRef
from elspeth.endpoints import check_endpoints
from elspeth.errors import ElspethError
from elspeth.ledger import Ledger
from elspeth.orchestration.llm_factory import LLMFactory
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.runner import Cancel
from elspeth.protocols import ResponseCache
from elspeth.registry import Registry, Resolved
from elspeth.resume import RunOptions
from elspeth.security import SecurityLevel, check_clearance, parse_level

__all__ = [
    "Plan",
    "build_all",
    "llm_factory",
    "run_cache",
    "check_clearances",
    "check_services",
    "data_level",
    "parts",
    "resolve_all",
    "run_llm",
]


def _build(resolved: Resolved | None, checker: Checker) -> Any:
    if resolved is None:
        return None
    try:
        return resolved.build()
    except ElspethError as exc:
        checker.add(resolved.loc, f"{resolved.info.domain} '{resolved.info.name}' could not start: {exc}")
    except Exception as exc:  # a plugin's constructor may raise anything; name the plugin and the place
        checker.add(
            resolved.loc,
            f"{resolved.info.domain} '{resolved.info.name}' ({resolved.info.distribution}) could not start: "
            f"{type(exc).__name__}: {exc}",
        )
    return None


def _resolve_list(
    registry: Registry, domain: str, refs: list[PluginRef], key: str, checker: Checker
) -> list[Resolved | None]:
    return [registry.resolve(domain, ref, (key, i), checker) for i, ref in enumerate(refs)]


@dataclass
class Plan:
    """Every plugin the settings name, resolved (``single`` by settings key) and then built."""

    single: dict[str, Resolved | None]
    lists: dict[str, list[Resolved | None]]
    built: dict[str, Any] = field(default_factory=dict)
    built_lists: dict[str, list[Any]] = field(default_factory=dict)

    def processors(self) -> list[tuple[str, Any]]:
        """(name, processor) of each built processor, in the settings' order."""
        pairs = zip(self.lists["processors"], self.built_lists["processors"], strict=True)
        return [(r.info.name, obj) for r, obj in pairs if r is not None]

    def resolved(self) -> list[Resolved]:
        """Every resolved plugin, for the metadata's plugin versions."""
        every = [*self.single.values(), *(r for refs in self.lists.values() for r in refs)]
        return [r for r in every if r is not None]


_SINGLE = {
    "orchestrator": "orchestrator",
    "datasource": "datasource",
    "llm": "llm_client",
    "rate_limiter": "rate_limiter",
    "cost_tracker": "cost_tracker",
    "executor": "executor",
}
_LISTS = {
    "middleware": "llm_middleware",
    "processors": "processor",
    "utilities": "utility",
    "sinks": "sink",
    "observers": "observer",
}


def resolve_all(loaded: LoadedSettings, registry: Registry, checker: Checker) -> Plan:
    """Resolve every plugin the settings name; each unknown name or bad option is a problem in ``checker``."""
    settings = loaded.settings
    single: dict[str, Resolved | None] = {}
    for key, domain in _SINGLE.items():
        ref: PluginRef | None = getattr(settings, key)
        single[key] = registry.resolve(domain, ref, (key,), checker) if ref is not None else None
    lists = {key: _resolve_list(registry, dom, getattr(settings, key), key, checker) for key, dom in _LISTS.items()}
    return Plan(single, lists)


def build_all(plan: Plan, checker: Checker) -> None:
    """Build every resolved plugin; one whose constructor raises is a problem naming it, not a traceback."""
    plan.built = {key: _build(r, checker) for key, r in plan.single.items()}
    plan.built_lists = {key: [_build(r, checker) for r in refs] for key, refs in plan.lists.items()}


def run_cache(utilities: list[Any], options: RunOptions) -> ResponseCache | None:
    """The run's response cache: the first utility that is one, unless ``--no-cache``."""
    caches = [u for u in utilities if isinstance(u, ResponseCache)]
    return caches[0] if caches and options.use_cache else None


def check_services(plan: Plan, settings: Any, checker: Checker) -> None:
    """Every middleware and utility that declares endpoints is checked against ``allowed_endpoints``."""
    for key in ("middleware", "utilities"):
        for resolved, obj in zip(plan.lists[key], plan.built_lists[key], strict=True):
            if resolved is not None and obj is not None:
                label = f"{resolved.info.domain} '{resolved.info.name}'"
                check_endpoints(obj, label, settings.allowed_endpoints, resolved.loc, checker)


def llm_factory(
    plan: Plan,
    loaded: LoadedSettings,
    data: tuple[SecurityLevel, str],
    cancel: Cancel,
    options: RunOptions,
    ledger: Ledger,
) -> LLMFactory:
    """The factory of every LLM pipeline of the run: the run's middleware, controls and cache around a client."""
    return LLMFactory(
        loaded,
        data,
        cancel,
        middleware=plan.built_lists["middleware"],
        rate_limiter=plan.built["rate_limiter"],
        cost_tracker=plan.built["cost_tracker"],
        cache=run_cache(plan.built_lists["utilities"], options),
        ledger=ledger,
    )


def run_llm(plan: Plan, loaded: LoadedSettings, factory: LLMFactory, checker: Checker) -> LLMPipeline | None:
    """The run's own pipeline, through the factory that builds every variant's too."""
    client, resolved = plan.built["llm"], plan.single["llm"]
    factory.run_client = client
    if client is None or resolved is None:
        return None
    return factory.checked(client, resolved.info.name, ("llm",), checker)


def parts(plan: Plan) -> list[tuple[str, str, Any]]:
    """(domain, name, plugin) of every part opened, summarised and closed around the run."""
    single, built, lists, objs = plan.single, plan.built, plan.lists, plan.built_lists
    pairs = [
        *zip(lists["middleware"], objs["middleware"], strict=True),
        (single["rate_limiter"], built["rate_limiter"]),
        (single["cost_tracker"], built["cost_tracker"]),
        *zip(lists["utilities"], objs["utilities"], strict=True),
        *zip(lists["processors"], objs["processors"], strict=True),
        # the datasource and the LLM client take part only in summary() and close()/aclose()
        (single["datasource"], built["datasource"]),
        (single["llm"], built["llm"]),
    ]
    return [(r.info.domain, r.info.name, obj) for r, obj in pairs if r is not None and obj is not None]


def data_level(loaded: LoadedSettings, datasource: Resolved | None) -> tuple[SecurityLevel, str]:
    """The data's level (the highest of the settings' and the datasource's) and what set it."""
    settings = loaded.settings
    level, source = settings.security_level or SecurityLevel.UNOFFICIAL, "the settings' security_level"
    declared = settings.datasource.security_level
    if declared is None and datasource is not None:
        default = getattr(datasource.info.factory, "security_level", None)
        declared = parse_level(default) if default is not None else None
    if declared is not None and declared > level:
        level, source = declared, f"datasource '{settings.datasource.plugin}'"
    return level, source


def check_clearances(loaded: LoadedSettings, plan: Plan, level: SecurityLevel, source: str, checker: Checker) -> None:
    """Refuse, before any plugin is built, every recipient of the data cleared below its level.

    Variants' clients are checked as they are built, by :class:`~elspeth.orchestration.llm_factory.LLMFactory`.
    """
    settings = loaded.settings
    recipients: list[tuple[Resolved | None, PluginRef | None]] = [
        (plan.single["llm"], settings.llm),
        *zip(plan.lists["middleware"], settings.middleware, strict=True),
        *zip(plan.lists["sinks"], settings.sinks, strict=True),
    ]
    for resolved, ref in recipients:
        if resolved is None or ref is None:
            continue
        where = (*resolved.loc, "security_level") if ref.security_level is not None else resolved.loc
        info = resolved.info
        check_clearance(info.domain, info.name, ref.security_level, info.factory, (level, source), where, checker)
