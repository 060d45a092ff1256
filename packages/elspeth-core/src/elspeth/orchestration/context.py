"""What an orchestrator and the plugins it drives are handed at run time."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from elspeth import _trace
from elspeth._sync import call
from elspeth.config._yaml import Checker, Loc
from elspeth.errors import ProcessorFailed
from elspeth.orchestration.pipeline import LLMPipeline
from elspeth.orchestration.runner import Cancel
from elspeth.security import SecurityLevel, clearance, refusal
from elspeth.store import EncodedRow, RunStore
from elspeth.types import Failure, Record, Row

if TYPE_CHECKING:
    from elspeth.config.settings import LoadedSettings, PluginRef
    from elspeth.registry import PluginInfo, Registry, Resolved

__all__ = ["NullProgress", "OrchestrationContext", "PluginContext", "Progress", "endpoint_allowed"]


def _normalise(url: str) -> str:
    """``url`` as ``scheme://host:port/path``, so two spellings of one endpoint compare equal.

    The scheme and host are lower-cased, the default port made explicit, user-info, query and
    fragment dropped, percent-escapes decoded and dot segments resolved (``/v1/../admin`` is
    ``/admin``), and the trailing slash removed.

    Raises:
        ValueError: the URL has no http(s) scheme, no host, or a port out of range.
    """
    import posixpath
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise ValueError("it needs an http:// or https:// scheme")
    host = (parts.hostname or "").rstrip(".")  # "api.example.com." is the same host as "api.example.com"
    if not host:
        raise ValueError("it has no host")
    port = parts.port or {"https": 443, "http": 80}[scheme]  # .port raises ValueError when out of range
    path = posixpath.normpath(unquote(parts.path)) if parts.path else ""
    path = "" if path in {".", "/", "//"} else path.rstrip("/")
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def endpoint_allowed(client: Any, allowed: Sequence[str] | None, loc: Loc, checker: Checker) -> bool:
    """Check an LLM client's ``endpoint`` (if it has one) against the settings' ``allowed_endpoints``.

    An endpoint is allowed when, after normalising (see :func:`_normalise`: scheme, host case, default
    port, user-info, dot segments, trailing slash), it equals an allowed entry or lies under its path
    at a ``/`` boundary: ``https://h/v1`` allows ``https://h/v1/chat`` but not ``https://h/v1beta``,
    and ``http://127.0.0.1`` does not allow ``http://127.0.0.1.evil.example``. Clients that call no
    network (mock, static) have no ``endpoint`` and always pass.
    """
    endpoint = getattr(client, "endpoint", None)
    if allowed is None or not endpoint:
        return True
    try:
        target = _normalise(str(endpoint))
    except ValueError as exc:
        checker.add(loc, f"LLM endpoint {endpoint!r} is not a URL that can be checked against allowed_endpoints: {exc}")
        return False
    for entry in allowed:
        try:
            prefix = _normalise(entry)
        except ValueError:  # the settings' own validation reports a bad entry at its line
            continue
        if target == prefix or target.startswith(prefix + "/"):
            return True
    checker.add(loc, f"LLM endpoint {endpoint} is not in allowed_endpoints ({', '.join(allowed)})")
    return False


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


class NullProgress:
    """Progress that shows nothing."""

    def start(self, total: int | None, description: str) -> None:
        """Ignore."""

    def advance(self, ok: bool) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


@dataclass
class PluginContext:
    """What datasources and sinks need from the run.

    Attributes:
        run_id: the run's id.
        name: the run's name.
        base_dir: the settings file's folder; relative input paths resolve against it.
        output_dir: where sinks write; relative output paths resolve against it.
        logger: the run's logger.
        security_level: the data's security level; sinks record it on what they write.
        written: every path :meth:`output_path` handed out during the run (resolved), whoever asked:
            a middleware's trail, a utility's index, a sink's file. A sink that packages the run (the
            signed bundle) lists those that exist, so no file the run wrote is left out.

    """

    run_id: str
    name: str
    base_dir: Path
    output_dir: Path
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("elspeth"))
    security_level: str = "UNOFFICIAL"
    written: set[Path] = field(default_factory=set)

    def input_path(self, path: str | Path) -> Path:
        """``path`` resolved against the settings file's folder."""
        return (self.base_dir / path).resolve()

    def output_path(self, path: str | Path) -> Path:
        """``path`` resolved against the output folder, whose parents are created; recorded in ``written``."""
        target = (self.output_dir / path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        self.written.add(target)
        return target


class _Group:
    """Rows handed to :meth:`OrchestrationContext.commit_row` in one turn of the event loop."""

    __slots__ = ("committed", "error", "rows")

    def __init__(self) -> None:
        self.rows: list[EncodedRow] = []
        self.committed = False
        self.error: Exception | None = None


@types.coroutine
def _yield() -> Any:
    """Let the event loop run what is ready once (``asyncio.sleep(0)`` without its checks)."""
    yield


@dataclass
class OrchestrationContext:
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
        store: the run store every finished row is committed to, if recording.
        prior: the finished rows of the run being resumed, by ``(group, row_id)`` (read from the store
            as they are asked for: see :class:`elspeth.resume.PriorRows`).

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
    security_level: SecurityLevel = SecurityLevel.UNOFFICIAL
    security_source: str = "the settings"
    store: RunStore | None = None
    prior: Mapping[tuple[str, str], Record | Failure] = field(default_factory=dict)
    _llm_parts: dict[str, Any] = field(default_factory=dict)
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

        The pipeline shares the run's middleware and controls. A problem with an option is reported where
        that option was written: under ``options_loc`` for a key of ``options_override``, under the
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
        base = ref or self.loaded.settings.llm
        if base is None:
            checker.add(loc, "no LLM client: set `llm` in the settings")
            return None
        ref_loc: Loc = loc if ref is not None else ("llm",)
        target = checker
        if options_override:
            base = base.model_copy(update={"options": {**base.options, **options_override}})
            where = options_loc if options_loc is not None else loc if ref is None else (*loc, "options")
            target = checker.moved({(*ref_loc, "options", key): (*where, key) for key in options_override})
        resolved = self.resolve("llm_client", base, ref_loc, target)
        if resolved is None:
            return None
        cleared = clearance(base.security_level, resolved.info.factory)
        problem = refusal("llm_client", resolved.info.name, cleared, self.security_level, self.security_source)
        if problem is not None:
            checker.add(loc, problem)
            return None
        try:
            client = resolved.build()
        except Exception as exc:  # a plugin's constructor may fail on anything; report it at its place
            checker.add(loc, f"llm_client '{resolved.info.name}' could not start: {exc}")
            return None
        if not endpoint_allowed(client, self.loaded.settings.allowed_endpoints, loc, checker):
            return None
        return LLMPipeline(
            client,
            self._llm_parts.get("middleware", ()),
            self._llm_parts.get("rate_limiter"),
            self._llm_parts.get("cost_tracker"),
            name=resolved.info.name,
            retry=self.loaded.settings.retry,
            cancel=self.cancel,
            cache=self._llm_parts.get("cache"),
        )

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
                changed = await call(step, current.data)
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

    def prior_result(self, group: str | None, row_id: str) -> Record | Failure | None:
        """The result this row already has from the run being resumed, if any.

        An orchestrator that supports resume asks this before working on a row and, when it gets an
        answer, uses it instead (and calls :meth:`resumed_row`): the row is neither run nor paid for again.
        """
        return self.prior.get((group or "", row_id)) if self.prior else None

    def resumed_row(self, item: Record | Failure) -> None:
        """Count a row taken over from the resumed run (progress only: it is already in the store)."""
        self.progress.advance(isinstance(item, Record))

    def row_finished(self, record: Record | None = None, failure: Failure | None = None) -> None:
        """Commit a finished row to the run store and report it to the progress bar and observers.

        The row is committed before this returns, so a worker that reports its row before taking
        another loses nothing to a kill. Async code does better with :meth:`commit_row`.
        """
        if self.store is not None:
            self.store.row_finished(self.run_id, record, failure)
        self._report(record, failure)

    async def commit_row(self, record: Record | None = None, failure: Failure | None = None) -> None:
        """Commit a finished row and report it, as :meth:`row_finished` does, for less per row.

        The rows handed in during one turn of the event loop are committed in one transaction at the
        start of the next, before any of their workers runs on; this returns once the caller's row is
        committed. So, as with :meth:`row_finished`, a row is in the store before its worker takes
        another, and a killed run repeats at most the calls in flight, while a busy run pays for one
        commit per turn instead of one per row.

        Raises:
            StoreError: the store could not write the rows of this turn (none of them is committed).

        Example::

            record = await self._answer(row)
            await ctx.commit_row(record=record)

        """
        if self.store is not None:
            group = self._group
            if group is None:
                group = self._group = _Group()
                asyncio.get_running_loop().call_soon(self._commit_group, group)
            group.rows.append(self.store.encode_row(self.run_id, record, failure))
            await _yield()  # the commit was scheduled before this task's wake-up, so it has run now
            if group.error is not None:
                raise group.error
        self._report(record, failure)

    def rows_finished(self, rows: Sequence[tuple[Record | None, Failure | None]]) -> None:
        """Commit several finished rows, each ``(record, None)`` or ``(None, failure)``, in one transaction.

        Then each is reported as :meth:`row_finished` reports it. For an orchestrator whose rows cost
        nothing to redo (no LLM call: the validation orchestrator), committing in groups trades a few
        rows checked again after a kill for far fewer transactions.
        """
        if self.store is not None and rows:
            self.store.rows_finished(self.run_id, rows)
        for record, failure in rows:
            self._report(record, failure)

    def commit_pending(self) -> None:
        """Commit the rows handed to :meth:`commit_row` whose turn has not come (the run is ending)."""
        if self._group is not None:
            self._commit_group(self._group)

    def _commit_group(self, group: _Group) -> None:
        if group.committed:
            return
        group.committed = True
        if self._group is group:
            self._group = None
        assert self.store is not None
        try:
            self.store.write_rows(group.rows)
        except Exception as exc:  # every worker of the group raises it
            group.error = exc

    def _report(self, record: Record | None, failure: Failure | None) -> None:
        self.progress.advance(failure is None)
        kwargs = {"run_id": self.run_id, "record": record, "failure": failure}
        for impl in self.registry.manager.hook.row_finished.get_hookimpls():
            _trace.hook_call("row_finished", impl.plugin_name, kwargs)
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames if a in kwargs})
            except Exception as exc:  # an observer's bug must fail neither the row nor the run
                message = f"row_finished observer {impl.plugin_name} raised {type(exc).__name__}: {exc}"
                logging.getLogger("elspeth").warning(message)
                self.extra.setdefault("warnings", []).append(message)

    def processor_names(self) -> Sequence[str]:
        """The processors' plugin names, in order."""
        return [name for name, _ in self.processors]
