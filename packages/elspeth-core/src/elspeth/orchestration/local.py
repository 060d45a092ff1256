"""The executor ``local`` (registered in ``builtins``): the orchestrator runs in this process, on the run's loop.

It is host code, as the response cache is, because the engine runs an orchestrator this way when the
settings name no executor.

This is the default (``executor: {plugin: local}``): LLM work is I/O bound and one event loop keeps
thousands of calls in flight, so a cluster executor is for runs that outgrow one machine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from elspeth._sync import invoke
from elspeth.datatypes import RunResult, Table

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs the orchestrator in this process, on one asyncio event loop (the default)."""

    name = "local"

    class Options(BaseModel):
        """``local`` takes no options: concurrency is the settings' ``concurrency``."""

        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    async def run(self, orchestrator: Any, table: Table, ctx: Any) -> RunResult:
        """Run ``orchestrator`` over ``table`` here: ``def`` or ``async def``, as every plugin method may be."""
        result: RunResult = await invoke(orchestrator.run, table, ctx)
        return result
