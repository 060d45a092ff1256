"""The callbacks Elspeth hands to registration hooks (``register``, ``add``): their call shapes, for type checkers."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, Literal, Protocol

__all__ = ["ControlRegistrar", "HookspecAdder", "Registrar"]


class Registrar(Protocol):
    """The ``register`` callback handed to every ``register_*`` hook.

    Args:
        plugin: a plugin class with ``name``, ``Options`` and a one-line docstring; it is
            constructed as ``plugin(options)`` when a run uses it. Or a reference to one,
            ``"package.module:Class"``, imported only when the plugin is first used (``plugins
            show``, ``validate``, a run), so ``elspeth plugins list`` stays fast; a reference
            needs ``name=`` and should give ``description=``.
        name: overrides ``plugin.name``.
        description: overrides the first line of the docstring.

    """

    def __call__(self, plugin: type[Any] | str, /, *, name: str | None = None, description: str | None = None) -> None:
        """Register ``plugin`` in this hook's domain."""
        ...


class ControlRegistrar(Protocol):
    """The ``register`` callback of :func:`register_controls`; ``kind`` picks the control's domain.

    ``plugin`` is a class or a ``"package.module:Class"`` reference, as for :class:`Registrar`.
    """

    def __call__(
        self,
        plugin: type[Any] | str,
        /,
        *,
        kind: Literal["rate_limiter", "cost_tracker"],
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        """Register ``plugin`` as a rate limiter or a cost tracker."""
        ...


class HookspecAdder(Protocol):
    """The ``add`` callback of :func:`add_hookspecs`.

    Args:
        module: a module (or class) of ``@hookspec`` functions.
        domains: for each new registration hook in ``module``, the plugin domain it registers into;
            Elspeth then calls that hook like its own ``register_*`` hooks, hands it a
            :class:`Registrar`, and lists what it registers in ``elspeth plugins list``.

    """

    def __call__(self, module: ModuleType | type, /, *, domains: Mapping[str, str] | None = None) -> None:
        """Add the hookspecs in ``module``."""
        ...
