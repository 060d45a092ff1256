"""The plugin registry: what is installed, in which domain, from which distribution, and whether it works."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from elspeth._targets import load_info
from elspeth.errors import ConfigError, PluginError, Problem

if TYPE_CHECKING:
    import pluggy
    from pydantic import BaseModel

    from elspeth.config._yaml import Checker, Loc

__all__ = ["Checker", "PluginInfo", "Registry", "Resolved"]

Status = Literal["ok", "broken", "disabled"]


def __getattr__(name: str) -> Any:
    # Checker stays importable from here without loading the settings models (and pydantic) up front
    if name == "Checker":
        from elspeth.config._yaml import Checker

        return Checker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin, or an entry point that failed to give one.

    Attributes:
        name: the name settings use.
        domain: ``datasource``, ``sink``, ``llm_client``, ... (empty for an entry point that never loaded).
        factory: builds the plugin from its validated options: ``factory(options)``.
        options: the pydantic model of the plugin's options.
        description: one line.
        distribution: the distribution it came from.
        version: that distribution's version.
        entry_point: the entry point (or builtin module) that registered it.
        status: ``ok``, ``broken`` or ``disabled``.
        error: why it is broken or disabled.
        target: ``"package.module:Class"`` of a plugin registered by reference whose class is not
            imported yet (``factory`` and ``options`` are None until the registry loads it on use).

    """

    name: str
    domain: str
    factory: Callable[..., Any] | None
    options: type[BaseModel] | None
    description: str
    distribution: str
    version: str
    entry_point: str
    status: Status = "ok"
    error: str | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, as ``elspeth plugins list --json`` prints it."""
        return {
            "name": self.name,
            "domain": self.domain,
            "description": self.description,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class Resolved:
    """A plugin reference checked against the registry: which plugin, and its validated options."""

    info: PluginInfo
    options: BaseModel
    loc: Loc

    def build(self) -> Any:
        """Construct the plugin from its options."""
        assert self.info.factory is not None
        return self.info.factory(self.options)


class Registry:
    """Every plugin found, by domain and name, plus the entries that are broken or disabled.

    Build one with :func:`elspeth.discovery.load_registry`; tests build their own from modules.
    """

    def __init__(self, plugins: Iterable[PluginInfo], manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._all = list(plugins)
        self._by_key: dict[tuple[str, str], list[PluginInfo]] = {}
        for info in self._all:
            if info.domain:
                self._by_key.setdefault((info.domain, info.name), []).append(info)

    def __iter__(self) -> Iterator[PluginInfo]:
        return iter(self._all)

    def domains(self) -> list[str]:
        """Every domain that has at least one plugin."""
        return sorted({info.domain for info in self._all if info.domain})

    def names(self, domain: str) -> list[str]:
        """The names of the working plugins in ``domain``."""
        return sorted(name for (dom, name), infos in self._by_key.items() if dom == domain and infos[0].status == "ok")

    def find(self, name: str) -> list[PluginInfo]:
        """Every entry called ``name``, in any domain (``domain:name`` narrows it to one domain)."""
        domain, _, bare = name.rpartition(":")
        return [self.loaded(i) for i in self._all if i.name == bare and (not domain or i.domain == domain)]

    def loaded(self, info: PluginInfo) -> PluginInfo:
        """``info`` with the class of a registration by reference imported (broken, with why, if that failed).

        The registry keeps the loaded entry in place of ``info``, so the import happens once.
        """
        if info.target is None or info.factory is not None or info.status != "ok":
            return info
        done = load_info(info)
        self._all = [done if i is info else i for i in self._all]
        for infos in self._by_key.values():
            infos[:] = [done if i is info else i for i in infos]
        return done

    def get(self, domain: str, name: str) -> PluginInfo:
        """The working plugin ``name`` in ``domain``.

        Raises:
            PluginError: it is not installed, or it is broken; the message lists what is installed
                in that domain and the closest name.

        """
        infos = self._by_key.get((domain, name))
        if not infos:
            raise PluginError(self.unknown_message(domain, name))
        info = self.loaded(infos[0])
        if info.status != "ok":
            raise PluginError(
                f"{domain} '{name}' from {info.distribution} {info.version} is {info.status}: {info.error}"
            )
        return info

    def unknown_message(self, domain: str, name: str) -> str:
        """Say that ``name`` is not a ``domain``, list the installed ones and suggest the closest."""
        installed = self.names(domain)
        message = f"unknown {domain} '{name}'"
        close = difflib.get_close_matches(name, installed, n=1, cutoff=0.5)
        message += f"; did you mean '{close[0]}'?" if close else "."
        if installed:
            message += f" Installed {domain}s: {', '.join(installed)}."
        else:
            message += f" No {domain} plugins are installed."
        broken = [i for i in self._all if i.status != "ok" and not i.domain]
        if broken:
            why = "; ".join(f"{i.entry_point} ({i.distribution} {i.version}) is {i.status}: {i.error}" for i in broken)
            message += f" Some plugins failed to load (see `elspeth plugins list`): {why}."
        return message

    def resolve(self, domain: str, ref: Any, loc: Loc, checker: Checker) -> Resolved | None:
        """Check a ``{plugin, options}`` reference: the plugin exists and works, and its options validate.

        Problems go to ``checker`` with their place in the settings; returns None if there were any.
        """
        name: str = ref.plugin
        options: Mapping[str, Any] = ref.options
        try:
            info = self.get(domain, name)
        except PluginError as exc:
            checker.add((*loc, "plugin"), str(exc))
            return None
        from pydantic import ValidationError

        assert info.options is not None
        try:
            model = info.options.model_validate(dict(options))
        except ValidationError as exc:
            checker.add_validation_error((*loc, "options"), exc, info.options)
            return None
        return Resolved(info, model, loc)

    def plugin_versions(self, infos: Iterable[PluginInfo]) -> list[dict[str, str]]:
        """The name, domain, distribution and version of each plugin, for run metadata."""
        seen: dict[tuple[str, str], dict[str, str]] = {}
        for info in infos:
            seen[(info.domain, info.name)] = {
                "domain": info.domain,
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
            }
        return list(seen.values())


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def options_schema(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Describe each option of a plugin: name, type, default, required, description.

    Required options come first (an options class may inherit shared optional fields before its own
    required ones); otherwise the model's field order is kept.
    """
    rows: list[dict[str, Any]] = []
    for field_name, info in model.model_fields.items():
        type_name = _type_name(info.annotation)
        required = info.is_required()
        default: Any = None
        if not required:
            default = info.get_default(call_default_factory=True)
        rows.append(
            {
                "name": info.alias or field_name,
                "type": type_name,
                "required": required,
                "default": default,
                "description": info.description or "",
            }
        )
    return sorted(rows, key=lambda row: not row["required"])


def raise_config(problems: list[Problem]) -> None:
    """Raise :class:`ConfigError` if ``problems`` is not empty."""
    if problems:
        raise ConfigError(problems)
