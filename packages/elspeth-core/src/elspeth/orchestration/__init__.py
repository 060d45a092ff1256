"""The orchestration framework: context, the concurrent row runner, and the LLM call pipeline."""

from elspeth.orchestration.context import NullProgress, OrchestrationContext, PluginContext, Progress
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.rows import RowCounts, RowFailed, RowRunner
from elspeth.orchestration.runner import Cancel, run_rows

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
