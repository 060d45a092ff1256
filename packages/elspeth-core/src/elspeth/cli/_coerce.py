"""``--disable-plugin`` and ``--help`` read without pydantic.

typer coerces the value of every parameter that is not a bool flag already holding a bool through a
pydantic ``TypeAdapter``, and builds that adapter even for a parameter left out; so every command line
would import pydantic (about 0.1 s) just to read the root's ``--disable-plugin`` strings and each
command's unset ``--help``. :func:`plain_coercion` gives those options a coercion of their own. It
uses typer's ``RuntimeParam``, which is not public: if a typer release moves it, the import in
``_commands`` fails quietly and typer's own coercion is used (correct, only slower;
``tests/test_import_budget.py`` then says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer._coercion import RuntimeParam

__all__ = ["plain_coercion"]


@dataclass(frozen=True)
class _Strings(RuntimeParam):
    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        return [str(item) for item in value]


@dataclass(frozen=True)
class _Flag(RuntimeParam):
    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        return bool(value)


_PLAIN: dict[str, type[RuntimeParam]] = {"disable_plugin": _Strings, "help": _Flag}


def plain_coercion(command: Any, ctx: Any) -> None:
    """Give ``--disable-plugin`` and ``--help`` of ``command`` and its subcommands a coercion without pydantic."""
    for param in command.get_params(ctx):  # the help option is made (and kept) here
        kind = _PLAIN.get(param.name or "")
        descriptor = getattr(param, "type_descriptor", None)
        if kind is not None and descriptor is not None and getattr(param, "_runtime_param", "") is None:
            param._runtime_param = kind(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
    for sub in getattr(command, "commands", {}).values():
        plain_coercion(sub, ctx)
