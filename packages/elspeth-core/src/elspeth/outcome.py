"""How a run ended, decided once, by the engine: :class:`RunOutcome`.

An orchestrator does not set a run's status. It declares what the engine needs in typed places:
``failures_are_verdicts`` (a class attribute: rejected rows are the run's answer, not its failure)
and :attr:`~elspeth.RunMetadata.early_stop` (which early-stop plugins stopped which part). The engine
adds what it knows itself (the run's cancel reason, the row counts, the sinks' errors) and decides.

A gate (:class:`GateResult`) is not part of the status: a run whose gate failed has still finished,
and its rows and reports are as good as any. ``elspeth run`` reads
:attr:`~elspeth.RunMetadata.failed_gates` for its exit code (3) after the status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["GateResult", "RunOutcome", "Status", "decide_outcome"]

Status = Literal["completed", "stopped", "interrupted", "failed"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One quality gate's verdict on a finished run, declared by the orchestrator that evaluated it.

    Attributes:
        name: the gate as its settings say it (``"mean >= 3.5 (variant)"``, or the name given).
        passed: whether the run met it.
        detail: the figures in words, for a person reading CI output (``"variant: mean 3.41 < 3.5"``).
        figures: the same figures as numbers, by name (``{"variant.mean": 3.41, "at_least": 3.5}``);
            None where a figure could not be computed (no scores, no cost recorded).
        where: the settings path of the gate (``"orchestrator.options.gates[0]"``), for JUnit and logs.

    """

    name: str
    passed: bool
    detail: str
    figures: Mapping[str, float | None]
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (``summary.json``, the run store)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "figures": dict(self.figures),
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A run's status and why.

    Attributes:
        status: ``completed``; ``stopped`` (an early stop or a budget: the run ended on purpose);
            ``interrupted`` (Ctrl-C or SIGTERM: resume it); ``failed`` (every row failed, or a sink
            could not write).
        reason: why, in words (``"budget reached: ..."``, ``"early stop by threshold (variant)"``,
            ``"every row failed (3)"``, ``"sinks[1] (csv) failed: ..."``); empty for a completed run.
        stop_reason: what stopped the whole run (its cancel reason: a budget, a Ctrl-C), if anything
            did; ``summary.json`` shows it as ``stop_reason``.

    """

    status: Status = "completed"
    reason: str = ""
    stop_reason: str | None = None

    @property
    def resumable(self) -> bool:
        """Whether ``--resume`` has rows left to run.

        Not a completed run, nor one an early stop ended (resuming it would take over the finished
        rows and stop again); a run stopped by a budget, interrupted or failed has.
        """
        if self.status == "completed":
            return False
        if self.status == "stopped":
            return bool(self.stop_reason)
        return True

    @classmethod
    def of_cancel(cls, reason: str | None) -> RunOutcome:
        """What a run's cancel reason alone says: ``interrupted`` (Ctrl-C), ``stopped`` (a budget) or ``completed``."""
        if reason is None:
            return cls()
        return cls("interrupted" if reason.startswith("interrupted") else "stopped", reason, reason)

    def sinks_failed(self, errors: Sequence[str]) -> RunOutcome:
        """The outcome after sinks failed to write: ``failed``, naming them (unchanged if none failed)."""
        if not errors:
            return self
        return replace(self, status="failed", reason="; ".join(errors))


def _early_stop_reason(early_stop: Mapping[str, Any]) -> str:
    parts = []
    for part, detail in early_stop.items():
        plugin = detail.get("plugin") if isinstance(detail, Mapping) else None
        parts.append(f"early stop by {plugin or detail} ({part})")
    return "; ".join(parts)


def decide_outcome(
    *,
    cancel_reason: str | None,
    early_stop: Mapping[str, Any] | None,
    succeeded: int,
    failed: int,
    failures_are_verdicts: bool = False,
) -> RunOutcome:
    """The outcome of a run whose orchestrator returned (sinks not yet written).

    Args:
        cancel_reason: the run's cancel reason, if it was cancelled (``interrupted (SIGINT)``, a budget).
        early_stop: the orchestrator's declared early stops, by part (an experiment's name).
        succeeded: records produced.
        failed: failures recorded.
        failures_are_verdicts: the orchestrator's class attribute: all rows rejected is then a finished run.

    """
    if cancel_reason is not None:
        return RunOutcome.of_cancel(cancel_reason)
    if early_stop:
        return RunOutcome("stopped", _early_stop_reason(early_stop))
    if succeeded == 0 and failed > 0 and not failures_are_verdicts:
        return RunOutcome("failed", f"every row failed ({failed})")
    return RunOutcome()
