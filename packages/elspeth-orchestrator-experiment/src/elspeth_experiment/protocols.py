"""What the experiment orchestrator's sub-plugins implement, and what they are handed.

As everywhere in Elspeth, any method may be ``def`` or ``async def``; plain methods run in a worker
thread unless marked :func:`elspeth.inline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from elspeth import Failure, LLMResponse, Record, Row, ValidationFailed

if TYPE_CHECKING:
    from elspeth import Checker, OrchestrationContext

__all__ = [
    "Aggregator",
    "BaselineComparison",
    "EarlyStop",
    "ExperimentResult",
    "RowPlugin",
    "SetupContext",
    "SuiteComparison",
    "ValidationFailedWithCalls",
    "Validator",
]


@dataclass
class SetupContext:
    """Handed to a sub-plugin's optional ``setup(setup)`` method while the settings are checked.

    A sub-plugin that needs more than its options (another LLM client, the datasource's columns)
    defines ``setup`` and reports what is wrong through :attr:`checker` at :attr:`loc`, so the run
    fails before its first row with every problem named.

    Attributes:
        ctx: the run's orchestration context (registry, ``build_llm``, ...).
        columns: the datasource's columns.
        loc: where the plugin's reference is in the settings, e.g. ``("orchestrator", "options", "validators", 0)``.
        checker: collects problems.

    Example::

        def setup(self, setup):
            self.judge = setup.ctx.build_llm(self.options.llm, None, (*setup.loc, "options", "llm"), setup.checker)

    """

    ctx: OrchestrationContext
    columns: Sequence[str]
    loc: tuple[str | int, ...]
    checker: Checker


@dataclass
class ExperimentResult:
    """One experiment's outcome, as comparisons and reports see it.

    Attributes:
        name: the experiment's name.
        baseline: True for the suite's baseline.
        records: its finished rows, in input order.
        failures: its failed rows.
        aggregates: each aggregator's summary, by aggregator name.
        early_stop: the early-stop reason, if it stopped early.
        rows_not_run: rows never started because the experiment stopped early.
        epochs: times each row was asked (``epochs: K``); a record's ``epoch_scores`` hold each epoch's scores.
        group: with ``group_by``, the category this result is the part of (None: every row).

    """

    name: str
    baseline: bool
    records: list[Record] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    aggregates: dict[str, Any] = field(default_factory=dict)
    early_stop: dict[str, Any] | None = None
    rows_not_run: int = 0
    epochs: int = 1
    group: str | None = None


class RowPlugin(Protocol):
    """Derives metrics from one row's responses."""

    def process_row(self, row: Row, responses: Mapping[str, LLMResponse]) -> Mapping[str, Any]:
        """Return metrics to merge into the record; ``responses`` maps criterion to response."""
        ...


class Aggregator(Protocol):
    """Summarises an experiment's records.

    An aggregator that also needs the failed rows, the rows not run or the early stop (to count a
    failed row's cost, or to say that the summary leaves failures out) defines
    ``finalize_result(result: ExperimentResult)`` as well; the runner then calls that instead.
    """

    def finalize(self, records: Sequence[Record]) -> Mapping[str, Any]:
        """Return a JSON-ready summary."""
        ...


class ValidationFailedWithCalls(ValidationFailed):
    """A rejection by a validator that called an LLM to decide; it carries those calls.

    Args:
        reason: a short sentence saying which rule failed and how.
        calls: the responses of the validator's own LLM calls; their tokens, latency and cost are
            added to the row's metrics (and broken out under ``validator``).

    """

    def __init__(self, reason: str, calls: Sequence[LLMResponse] = ()) -> None:
        super().__init__(reason)
        self.calls = list(calls)


class Validator(Protocol):
    """Checks a response; raises :class:`elspeth.ValidationFailed` with a reason when it breaks a rule.

    A validator that calls an LLM itself (``llm_guard``) returns the responses of those calls when it
    accepts, and raises :class:`ValidationFailedWithCalls` with them when it rejects, so that the row's
    tokens and cost include them.
    """

    def validate(self, response: LLMResponse, row: Row) -> Sequence[LLMResponse] | None:
        """Return normally (None, or the validator's own LLM responses) when the response is acceptable."""
        ...


class BaselineComparison(Protocol):
    """Compares a variant with the baseline; called once per variant."""

    def compare(self, baseline: ExperimentResult, variant: ExperimentResult) -> Mapping[str, Any]:
        """Return a JSON-ready comparison."""
        ...


class SuiteComparison(Protocol):
    """Compares every variant with the baseline in one call.

    A comparison plugin defines ``compare_all`` instead of ``compare`` when its result for one
    variant depends on the others, as a multiple-comparison correction (Holm) across variants does.
    The orchestrator calls ``compare_all`` once, after every experiment has finished.
    """

    def compare_all(
        self, baseline: ExperimentResult, variants: Sequence[ExperimentResult]
    ) -> Mapping[str, Mapping[str, Any]]:
        """Return a JSON-ready comparison per variant name."""
        ...


class EarlyStop(Protocol):
    """Decides whether an experiment should stop taking rows.

    ``check`` sees every finished row. A plugin that also needs to see failed rows (a failure-rate
    stop) defines ``check_failure(failure)`` too, with the same return convention. A plugin that
    watches a variant's difference from the baseline (``sequential``) defines ``begin(baseline)``:
    it is called once before the experiment's first row with the finished baseline's
    :class:`ExperimentResult` (None when the experiment is the baseline).

    A reason mapping with ``valid_under_monitoring: True`` and ``always_valid_p`` says the stop came from
    a test whose error rate holds however often it looked; comparisons quote that p-value. Any other stop
    makes the comparisons of the experiment say that their fixed-n p-values do not hold.
    """

    def check(self, record: Record) -> Mapping[str, Any] | str | None:
        """Return a reason to stop, or None to go on."""
        ...
