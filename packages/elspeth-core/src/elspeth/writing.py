"""Handing a finished run's result to its sinks, in the order they depend on each other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elspeth._sync import call
from elspeth.types import Artifact, RunResult

if TYPE_CHECKING:
    from elspeth.engine import PreparedRun
    from elspeth.registry import Resolved

__all__ = ["write_sinks"]


def _collect_stage(item: tuple[Resolved, Any]) -> int:
    return int(getattr(item[1], "collects_run_artifacts", 0))


async def write_sinks(result: RunResult, prepared: PreparedRun) -> tuple[list[Artifact], list[str]]:
    """Hand ``result`` to every sink; one sink's failure does not stop the others.

    Sinks write in the settings' order, except that a sink whose class sets ``collects_run_artifacts``
    (an int: 1 for ``signed``, 2 for ``azure_blob``) writes after every sink with a lower value, so it
    sees, in ``metadata.extra["artifacts"]``, everything they wrote. The sort is stable.
    """
    artifacts: list[Artifact] = []
    errors: list[str] = []
    listed = result.metadata.extra.setdefault("artifacts", [])
    level = prepared.context.plugin_context.security_level
    for resolved, sink in sorted(prepared.sinks, key=_collect_stage):
        where = f"sinks[{resolved.loc[-1]}] ({resolved.info.name})"
        try:
            written = await call(sink.write, result, prepared.context.plugin_context)
        except Exception as exc:  # report every sink's failure by name, keep going with the rest
            errors.append(f"{where} failed: {type(exc).__name__}: {exc}")
            continue
        for artifact in written or []:
            artifacts.append(artifact)
            # listed as each sink finishes, so a later sink (a signed bundle) sees what earlier ones wrote
            listed.append(
                {
                    "path": str(getattr(artifact, "url", None) or artifact.path),  # a blob is listed by its URL
                    "media_type": artifact.media_type,
                    "sink": artifact.sink,
                    "security_level": level,
                }
            )
    return artifacts, errors
