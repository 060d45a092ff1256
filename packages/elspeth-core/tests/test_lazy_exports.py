"""lazy_exports: a package's names load on first use, once, and an unknown name is an AttributeError."""

from __future__ import annotations

import sys
import types

import pytest

from elspeth import lazy_exports


@pytest.fixture
def package(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("lazy_demo")
    module.__getattr__ = lazy_exports("lazy_demo", {"dumps": "json", "sqrt": "math"})  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_demo", module)
    return module


def test_a_name_loads_from_its_module_and_is_kept(package: types.ModuleType) -> None:
    import json

    assert "dumps" not in vars(package)
    assert package.dumps is json.dumps
    assert vars(package)["dumps"] is json.dumps  # later reads do not come back to __getattr__


def test_an_unknown_name_is_an_attribute_error_naming_the_package(package: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match="module 'lazy_demo' has no attribute 'nope'"):
        package.nope  # noqa: B018
    assert not hasattr(package, "loads")
