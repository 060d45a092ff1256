"""Package attributes that load on first use (PEP 562), so importing a plugin package stays cheap.

A distribution's ``__init__`` names its public objects without importing the modules behind them
(which may need pydantic, an SDK, scipy)::

    from elspeth import lazy_exports

    _LAZY = {"ExcelSink": "elspeth_sink_excel.sink"}
    __getattr__ = lazy_exports(__name__, _LAZY)

``elspeth_sink_excel.ExcelSink`` then imports ``elspeth_sink_excel.sink`` the first time it is read
and keeps the object in the package, so later reads cost nothing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each of ``names`` from its module on first use.

    Args:
        package: the package's ``__name__``.
        names: each exported name and the module that defines it.

    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
