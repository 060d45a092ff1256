"""Live observation of a run: the settings' ``observers`` and the fine-grained observer hooks.

An observer plugin (domain ``observer``, named under ``observers:`` in the settings) is an object
whose methods are ``@hookimpl`` implementations of the observer hooks (``run_started``,
``row_finished``, ``run_finished``, ``llm_attempt_finished``, ``stage_finished``,
``gauge_reported``). For the run's duration each is registered in the plugin manager, guarded like
every plugin (one observer's exception is a warning, never a failed row), so every hook is still
called through pluggy.

The fine-grained hooks fire often (every LLM attempt, every row's stages), so :class:`Observation`
looks once, at the start of the run, whether any implementation of each exists: with none, the
hot path pays one ``is None`` test and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from elspeth._hooks import call_observers, guarded
from elspeth._sync import invoke
from elspeth.errors import RunFailed
from elspeth.hookspecs import PROJECT

if TYPE_CHECKING:
    from elspeth.engine import PreparedRun

__all__ = ["FINE_HOOKS", "ObservedRun", "Observation", "current_row_id", "observe_run"]

FINE_HOOKS = ("llm_attempt_finished", "stage_finished", "gauge_reported")

_row_id: ContextVar[str | None] = ContextVar("elspeth_observed_row", default=None)


def current_row_id() -> str | None:
    """The id of the row whose work runs in this task (set by the row runner), or None outside a row."""
    return _row_id.get()


class Observation:
    """The run's fine-grained observer calls, each None when no implementation of its hook is registered.

    Attributes:
        run_id: the run's id, passed to every hook.
        warn_into: where an observer's failure is written (the context's ``warnings``, then the metadata's).
    """

    def __init__(self, pm: pluggy.PluginManager, run_id: str, warn_into: list[str]) -> None:
        self.pm = pm
        self.run_id = run_id
        self.warn_into = warn_into
        self.active = {name: bool(getattr(pm.hook, name).get_hookimpls()) for name in FINE_HOOKS}
        self.in_flight = 0

    @property
    def any(self) -> bool:
        """Whether any fine-grained hook has an implementation (else the caller may keep None)."""
        return any(self.active.values())

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` (if it has implementations) with ``run_id`` and ``kwargs``; failures become warnings."""
        if self.active.get(hook):
            call_observers(self.pm, hook, self.warn_into, run_id=self.run_id, **kwargs)

    def gauge(self, name: str, value: float) -> None:
        """Report a gauge (``in_flight``, ``rate_limiter_rate``, ``consumer_lag``, ...)."""
        self.call("gauge_reported", name=name, value=float(value))

    @contextmanager
    def stage(self, stage: str, row_id: str | None) -> Iterator[dict[str, Any]]:
        """Time ``stage`` of ``row_id`` and report it on leaving; set ``outcome["failed"]`` to report a failure."""
        outcome: dict[str, Any] = {"failed": False, "error": None}
        wall, started = time.time(), time.perf_counter()
        try:
            yield outcome
        except BaseException as exc:
            outcome.update(failed=True, error=type(exc).__name__)
            raise
        finally:
            self.call(
                "stage_finished",
                row_id=row_id,
                stage=stage,
                started=wall,
                duration_s=time.perf_counter() - started,
                failed=outcome["failed"],
                error=outcome["error"],
            )

    @contextmanager
    def row(self, row_id: str) -> Iterator[None]:
        """Mark this task as working on ``row_id``, count it in flight, and report its whole span as stage ``row``.

        ``row`` is reported last of the row's stages (after ``commit`` and its ``row_finished``), so an
        observer that groups a row's stages (``opentelemetry``) knows the row is complete.
        """
        token = _row_id.set(row_id)
        self.in_flight += 1
        self.gauge("in_flight", self.in_flight)
        try:
            with self.stage("row", row_id):
                yield
        finally:
            self.in_flight -= 1
            self.gauge("in_flight", self.in_flight)
            _row_id.reset(token)


def attach(pm: pluggy.PluginManager, observers: Sequence[tuple[str, Any]]) -> list[str]:
    """Register each ``(name, observer)`` for the run, guarded; returns the names to :func:`detach`."""
    names = []
    for index, (name, observer) in enumerate(observers):
        key = f"observer:{name}[{index}]"
        pm.register(guarded(observer, PROJECT, f"observer {name}"), name=key)
        names.append(key)
    return names


def detach(pm: pluggy.PluginManager, names: Sequence[str]) -> None:
    """Unregister the observers :func:`attach` registered."""
    for key in names:
        plugin = pm.get_plugin(key)
        if plugin is not None:
            pm.unregister(plugin, name=key)


@dataclass
class ObservedRun:
    """The settings' observers, registered and open for one run; :meth:`end` closes and unregisters them."""

    pm: pluggy.PluginManager
    names: list[str]
    observers: list[tuple[str, Any]]

    async def end(self) -> None:
        """Unregister every observer, then close each that has ``close()`` (a server stops serving)."""
        detach(self.pm, self.names)
        for _, observer in reversed(self.observers):
            closer = getattr(observer, "close", None)
            if closer is not None:
                await invoke(closer)


async def observe_run(prepared: PreparedRun) -> ObservedRun:
    """Open and register the settings' observers and hand the run's :class:`Observation` to the row runner and LLM.

    Raises:
        RunFailed: an observer could not open (its port is taken), naming it; no row has run.
    """
    ctx, pm = prepared.context, prepared.registry.manager
    opened: list[tuple[str, Any]] = []
    for name, observer in prepared.observers:
        opener = getattr(observer, "open", None)
        try:
            if opener is not None:
                await invoke(opener, ctx.plugin_context)
        except Exception as exc:
            await ObservedRun(pm, [], opened).end()
            raise RunFailed(f"observer '{name}' could not start: {type(exc).__name__}: {exc}") from exc
        opened.append((name, observer))
    observed = ObservedRun(pm, attach(pm, opened), opened)
    observation = Observation(pm, ctx.run_id, ctx.warnings)
    if observation.any:  # with no fine-grained observer, the hot paths keep None and pay nothing
        ctx.observation = observation
        if ctx.llm_factory is not None:
            ctx.llm_factory.observe(observation)
        if ctx.llm is not None:
            ctx.llm.observation = observation
    return observed
