"""Handing a finished run's result to its sinks, in the order they depend on each other."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from elspeth._sync import invoke
from elspeth.datatypes import Artifact, RunResult
from elspeth.errors import ConfigError

if TYPE_CHECKING:
    from elspeth.engine import PreparedRun
    from elspeth.registry import Resolved

__all__ = ["order_sinks", "write_sinks"]


def _follows(after: tuple[str, ...] | None, other: Resolved, other_after: tuple[str, ...] | None) -> bool:
    """Whether a sink declaring ``after`` writes after ``other``."""
    if after is None:
        return False
    return other.info.name in after or ("*" in after and other_after is None)


def _declared(sink: Any) -> tuple[str, ...] | None:
    after = getattr(sink, "after", None)
    if after is None:
        return None
    return (after,) if isinstance(after, str) else tuple(after)


def order_sinks(sinks: Sequence[tuple[Resolved, Any]]) -> list[tuple[Resolved, Any]]:
    """The sinks in the order they write: settings order, except each writes after the sinks it declares.

    A sink class declares ``after: ClassVar[tuple[str, ...]]``, the sink plugins it follows by name
    (``"*"``: every sink that declares no ``after``). ``signed`` follows ``"*"``; ``azure_blob`` follows
    ``"*"`` and ``"signed"``. A name no sink of the run has is ignored. The sort is stable: of the sinks
    free to write, the first in the settings writes first.

    Raises:
        ConfigError: the declarations form a cycle; the message names the sinks in it.

    """
    afters = [_declared(sink) for _, sink in sinks]
    before: list[set[int]] = [
        {j for j, (other, _) in enumerate(sinks) if j != i and _follows(afters[i], other, afters[j])}
        for i in range(len(sinks))
    ]
    order: list[int] = []
    left = list(range(len(sinks)))
    while left:
        ready = [i for i in left if before[i] <= set(order)]
        if not ready:
            stuck = ", ".join(
                f"sinks[{sinks[i][0].loc[-1]}] ({sinks[i][0].info.name}, after={afters[i]})" for i in left
            )
            raise ConfigError(f"sinks: these sinks each wait for another to write first, in a cycle: {stuck}")
        order.append(ready[0])
        left.remove(ready[0])
    return [sinks[i] for i in order]


async def write_sinks(result: RunResult, prepared: PreparedRun) -> tuple[list[Artifact], list[str]]:
    """Hand ``result`` to every sink; one sink's failure does not stop the others.

    Sinks write in the order of :func:`order_sinks` (``prepared.sinks`` is already in it): a sink that
    declares ``after`` sees, through :func:`elspeth.reported_artifacts`, everything the sinks it
    follows wrote (``result.metadata.artifacts``).
    """
    artifacts: list[Artifact] = []
    errors: list[str] = []
    meta = result.metadata
    listed = meta.artifacts = list(meta.artifacts or [])  # an orchestrator's own files (rejects) come first
    level = prepared.context.plugin_context.security_level
    for resolved, sink in order_sinks(prepared.sinks):
        where = f"sinks[{resolved.loc[-1]}] ({resolved.info.name})"
        observation = prepared.context.observation
        timed = nullcontext() if observation is None else observation.stage(f"sink:{resolved.info.name}", None)
        try:
            with timed:
                written = await invoke(sink.write, result, prepared.context.plugin_context)
        except Exception as exc:  # report every sink's failure by name, keep going with the rest
            errors.append(f"{where} failed: {type(exc).__name__}: {exc}")
            continue
        for artifact in written or []:
            artifacts.append(artifact)
            # listed as each sink finishes, so a later sink (a signed bundle) sees what earlier ones wrote
            listed.append(artifact if artifact.security_level else replace(artifact, security_level=level))
    return artifacts, errors
