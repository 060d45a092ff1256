"""The orchestration framework: context, the concurrent row runner, and the LLM call pipeline.

The names load on first use (PEP 562), so that importing a light submodule such as
``elspeth.orchestration.retry`` (which the settings models need) does not import the context, the
pipeline and asyncio: ``elspeth plugins list`` never needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elspeth.orchestration.context import NullProgress, OrchestrationContext, Progress
    from elspeth.orchestration.pipeline import LLMPipeline
    from elspeth.orchestration.plugin_context import PluginContext
    from elspeth.orchestration.rows import RowCounts, RowFailed, RowRunner
    from elspeth.orchestration.runner import Cancel, run_rows

_LAZY = {
    "Cancel": "elspeth.orchestration.runner",
    "LLMPipeline": "elspeth.orchestration.pipeline",
    "NullProgress": "elspeth.orchestration.context",
    "OrchestrationContext": "elspeth.orchestration.context",
    "PluginContext": "elspeth.orchestration.plugin_context",
    "Progress": "elspeth.orchestration.context",
    "RowCounts": "elspeth.orchestration.rows",
    "RowFailed": "elspeth.orchestration.rows",
    "RowRunner": "elspeth.orchestration.rows",
    "run_rows": "elspeth.orchestration.runner",
}

__all__ = [
    "Cancel",
    "LLMPipeline",
    "NullProgress",
    "OrchestrationContext",
    "PluginContext",
    "Progress",
    "RowCounts",
    "RowFailed",
    "RowRunner",
    "run_rows",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth.orchestration' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
