"""What an orchestrator and the plugins it drives are handed at run time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from elspeth._hooks import call_observers
from elspeth._sync import invoke
from elspeth.config._yaml import Checker, Loc
from elspeth.datatypes import Failure, Record, Row
from elspeth.endpoints import endpoint_allowed
from elspeth.errors import ProcessorFailed
from elspeth.ledger import Ledger, Spend
from elspeth.observing import Observation
from elspeth.orchestration.commits import RowCommits, _Group
from elspeth.orchestration.llm_factory import LLMFactory
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.plugin_context import PluginContext
from elspeth.orchestration.runner import Cancel
from elspeth.partitions import ShippedResults
from elspeth.security import SecurityLevel
from elspeth.store import RunStore

if TYPE_CHECKING:
    from elspeth.config.settings import LoadedSettings, PluginRef
    from elspeth.registry import PluginInfo, Registry, Resolved

__all__ = ["NullProgress", "OrchestrationContext", "PluginContext", "Progress", "endpoint_allowed"]


class Progress(Protocol):
    """Receives progress as rows finish; the CLI shows a bar, tests and libraries may ignore it."""

    def start(self, total: int | None, description: str) -> None:
        """A new phase begins with ``total`` rows (None if unknown)."""
        ...

    def advance(self, ok: bool) -> None:
        """One row finished, successfully or not."""
        ...

    def finish(self) -> None:
        """The phase ended."""
        ...

    # optional: ``status(text)``, a line of live figures an orchestrator shows beside the count (the streaming
    # mode's messages/s, lag, in flight); orchestrators look for it with getattr, so a Progress may leave it out


class NullProgress:
    """Progress that shows nothing."""

    def start(self, total: int | None, description: str) -> None:
        """Ignore."""

    def advance(self, ok: bool) -> None:
        """Ignore."""

    def status(self, text: str) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


@dataclass
class OrchestrationContext(RowCommits):
    """Everything an orchestrator needs, handed to ``check`` and ``run``.

    Attributes:
        run_id: the run's id.
        name: the run's name.
        registry: every installed plugin; orchestrators resolve their own sub-plugins through it.
        loaded: the settings, with their file and line map.
        llm: the configured LLM client in its middleware and controls, if the settings name one.
        processors: row processors from the settings, applied by :meth:`preprocess`.
        utilities: utility plugins from the settings.
        concurrency: rows in flight at once.
        progress: where to report finished rows.
        cancel: set to stop taking new rows (early stop, Ctrl-C, budget).
        plugin_context: handed to datasources and sinks.
        used: every plugin resolved for this run, for the metadata.
        extra: facts the orchestrator wants in the run metadata.
        security_level: the data's level; every LLM client built through :meth:`build_llm` must be cleared for it.
        security_source: what set that level, for messages.
        llm_factory: builds the pipelines of :meth:`build_llm` with the run's middleware, controls and checks.
        observation: the fine-grained observer hooks (:mod:`elspeth.observing`), None when no observer
            implements one; the row runner reports stages and rows in flight through it, and an
            orchestrator may report a gauge of its own (``ctx.observation.gauge("consumer_lag", n)``).
        store: the run store every finished row is committed to, if recording.
        prior: the finished rows of the run being resumed, by ``(group, row_id)`` (read from the store
            as they are asked for: see :class:`elspeth.resume.PriorRows`).
        ledger: what the run spent (cost, tokens, LLM calls, attempts), written by every LLM pipeline of
            the run; on resume it starts from what the earlier attempts spent.
        shipped: on the client of a cluster executor, the rows' results worked out on workers: the row
            runner takes a row's result from here instead of working on it (:mod:`elspeth.partitions`).
        capture: on a cluster worker, called by the row runner with ``(group, row, item, spend)`` for each
            row it works out, so the worker can send the results back.
        sinks: the settings' sinks as ``(name, sink)`` in writing order, for an orchestrator that hands results
            to them as they finish (the streaming orchestrator's :class:`elspeth.StreamSink`); every sink is
            still handed the run's result when it ends.
        max_messages: a streaming orchestrator stops taking messages after this many (``--max-messages``).

    """

    run_id: str
    name: str
    registry: Registry
    loaded: LoadedSettings
    llm: LLMPipeline | None
    processors: list[tuple[str, Any]]
    utilities: list[Any]
    concurrency: int
    plugin_context: PluginContext
    progress: Progress = field(default_factory=NullProgress)
    cancel: Cancel = field(default_factory=Cancel)
    used: list[PluginInfo] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    security_level: SecurityLevel = SecurityLevel.UNOFFICIAL
    security_source: str = "the settings"
    store: RunStore | None = None
    prior: Mapping[tuple[str, str], Record | Failure] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    llm_factory: LLMFactory | None = None
    observation: Observation | None = None
    shipped: ShippedResults | None = None
    capture: Callable[[str | None, Row, Record | Failure, Spend], None] | None = None
    sinks: list[tuple[str, Any]] = field(default_factory=list)
    max_messages: int | None = None
    _group: _Group | None = field(default=None, init=False, repr=False)

    @property
    def options_loc(self) -> Loc:
        """Where the orchestrator's options are in the settings, for error messages."""
        return ("orchestrator", "options")

    def checker(self) -> Checker:
        """A fresh problem collector for the settings file."""
        return self.loaded.checker()

    def resolve(self, domain: str, ref: PluginRef, loc: Loc, checker: Checker) -> Resolved | None:
        """Check a plugin reference from the orchestrator's options; see :meth:`Registry.resolve`."""
        resolved = self.registry.resolve(domain, ref, loc, checker)
        if resolved is not None:
            self.used.append(resolved.info)
        return resolved

    def build_plugins(
        self,
        domain: str,
        refs: Sequence[PluginRef],
        loc: Loc,
        checker: Checker,
        *,
        label: str | None = None,
        prepare: Callable[[Any, Resolved, Loc], bool] | None = None,
    ) -> list[tuple[str, Any]]:
        """Resolve and build the plugins an orchestrator's own option lists, as ``(name, plugin)`` in order.

        A plugin that is unknown, has bad options or whose constructor raises is reported at its place
        (``(*loc, i)``) and left out. ``prepare(plugin, resolved, where)``, if given, runs on each built plugin
        and returns False to leave it out (having reported why).

        Example::

            loc = (*ctx.options_loc, "post_processors")
            self._post = ctx.build_plugins("processor", self.options.post_processors, loc, checker)

        """
        built = []
        for i, ref in enumerate(refs):
            where = (*loc, i)
            resolved = self.resolve(domain, ref, where, checker)
            if resolved is None:
                continue
            try:
                plugin = resolved.build()
                if prepare is not None and not prepare(plugin, resolved, where):
                    continue
            except Exception as exc:  # a plugin's constructor may raise anything: report it at its place
                checker.add(where, f"{label or domain} '{ref.plugin}' could not start: {type(exc).__name__}: {exc}")
                continue
            built.append((resolved.info.name, plugin))
        return built

    def build_llm(
        self,
        ref: PluginRef | None,
        options_override: Mapping[str, Any] | None,
        loc: Loc,
        checker: Checker,
        *,
        options_loc: Loc | None = None,
    ) -> LLMPipeline | None:
        """Build an LLM pipeline for another client or other client options, as a suite variant needs.

        The pipeline shares the run's middleware and controls, and is built by the run's
        :class:`~elspeth.orchestration.llm_factory.LLMFactory` after the same checks as the run's own client:
        its clearance for the data (a variant that sends elsewhere than `llm`, by ``llm_options`` or its
        own ``ref``, inherits no declared clearance) and ``allowed_endpoints``. A problem with an option is
        reported where that option was written: under ``options_loc`` for a key of ``options_override``, under the
        client's own ``options`` for the rest.

        Args:
            ref: another client, or None for the settings' own ``llm``.
            options_override: options merged over the client's options.
            loc: where ``ref`` is in the settings; without ``ref``, where the override is.
            checker: collects problems.
            options_loc: where ``options_override`` is (default: ``loc`` without ``ref``, else the
                ``options`` of ``ref``).

        Example::

            variant = ("orchestrator", "options", "experiments", 1)
            llm = ctx.build_llm(None, {"seed": 11}, (*variant, "llm_options"), checker)

        """
        data = (self.security_level, self.security_source)
        factory = self.llm_factory or LLMFactory(
            self.loaded, data, self.cancel, run_client=getattr(self.llm, "client", None), ledger=self.ledger
        )
        return factory.variant(self.resolve, ref, options_override, loc, checker, options_loc)

    async def preprocess(self, row: Row) -> Row:
        """Apply the settings' processors, then every utility with ``enrich``, to ``row``.

        Raises:
            ProcessorFailed: a processor or utility raised. The orchestrator records the row's failure with
                the exception's ``row`` (the row as the steps before it left it), never the row it passed
                in, so that personal data an earlier ``pii_redaction`` removed stays out of failures.

        """
        steps = [(name, p.process) for name, p in self.processors]
        steps += [(getattr(u, "name", type(u).__name__), u.enrich) for u in self.utilities if hasattr(u, "enrich")]
        current = row
        for name, step in steps:
            try:
                changed = await invoke(step, current.data)
            except Exception as exc:  # the row's failure, carrying the row as far as it got
                raise ProcessorFailed(str(name), exc, current) from exc
            if changed is not None:
                current = Row(row.id, changed, row.index)
        return current

    def available_fields(self, columns: Sequence[str]) -> list[str]:
        """The fields a row has when an orchestrator renders it: columns plus what processors and utilities add.

        Processors and utilities declare what they add in an ``adds_fields`` attribute.

        Orchestrators check templates against these, so ``{{ context }}`` from a retrieval utility is
        not reported as a missing column.
        """
        fields = list(columns)
        for part in [p for _, p in self.processors] + list(self.utilities):
            for name in getattr(part, "adds_fields", ()) or ():
                if name not in fields:
                    fields.append(str(name))
        return fields

    def expect_rows(self, total: int) -> None:
        """Say how many rows the whole run will finish (across every phase), for history's "pending" count."""
        if self.store is not None:
            self.store.set_total(self.run_id, total)

    def mark_emitted(self, row_ids: Sequence[str]) -> None:
        """Remember in the run store that these rows' results reached every streaming sink (a streaming run).

        A restart asks :meth:`emitted` before emitting a resumed row's result again. Without a run store
        there is nothing to remember across runs, and this does nothing.
        """
        if self.store is not None and row_ids:
            self.store.mark_emitted(self.run_id, row_ids)

    def emitted(self, row_ids: Sequence[str]) -> set[str]:
        """Which of these rows' results :meth:`mark_emitted` recorded, in this run or the attempts it resumes."""
        return self.store.emitted(self.run_id, row_ids) if self.store is not None and row_ids else set()

    def prior_result(self, group: str | None, row_id: str) -> Record | Failure | None:
        """The result this row already has from the run being resumed, if any.

        An orchestrator that supports resume asks this before working on a row and, when it gets an
        answer, uses it instead (and calls :meth:`resumed_row`): the row is neither run nor paid for again.
        """
        return self.prior.get((group or "", row_id)) if self.prior else None

    def resumed_row(self, item: Record | Failure) -> None:
        """Count a row taken over from the resumed run (progress only: it is already in the store)."""
        self.progress.advance(isinstance(item, Record))

    def _report(self, record: Record | None, failure: Failure | None) -> None:
        self.progress.advance(failure is None)
        # through pluggy, each observer's failure kept its own: it fails neither the row nor the run
        call_observers(
            self.registry.manager, "row_finished", self.warnings, run_id=self.run_id, record=record, failure=failure
        )

    def processor_names(self) -> Sequence[str]:
        """The processors' plugin names, in order."""
        return [name for name, _ in self.processors]
