"""The protocols a plugin of each universal domain implements.

Any method below may be written ``def`` or ``async def`` (:meth:`Orchestrator.check` included): the
runner awaits coroutines on its event loop and runs plain functions in a worker thread, so a sync
plugin never blocks other rows. A sync method that is cheap and never blocks can be marked with
:func:`elspeth.inline` to skip the thread.

Called synchronously, so always a plain ``def``: the constructor, every hook (registration and
observer hooks), :meth:`CostTracker.summary`, an orchestrator's optional ``summary(result)`` and an
experiment sub-plugin's optional ``setup(setup)``.

Every plugin class carries ``name``, ``Options`` (a pydantic model) and a docstring whose first
line is its description, and is constructed as ``cls(options)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, TypeVar, runtime_checkable

from pydantic import BaseModel

from elspeth.datatypes import Artifact, LLMRequest, LLMResponse, RunResult, Table

if TYPE_CHECKING:
    from elspeth.orchestration.context import OrchestrationContext, PluginContext

__all__ = [
    "CallsServices",
    "CostTracker",
    "DataSource",
    "Enricher",
    "Executor",
    "LLMClient",
    "LLMMiddleware",
    "Orchestrator",
    "PluginClass",
    "Processor",
    "RateLimiter",
    "ResponseCache",
    "Sink",
    "Utility",
]

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]


@runtime_checkable
class PluginClass(Protocol):
    """What every registered plugin class provides.

    Attributes:
        name: the name users write in settings (``plugin: csv``).
        Options: the pydantic model that validates the plugin's ``options``.

    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]


class DataSource(Protocol):
    """Where rows come from. ``load`` returns a :class:`~elspeth.datatypes.Table` whose rows are read lazily."""

    def load(self, ctx: PluginContext) -> MaybeAwaitable[Table]:
        """Open the source and return its columns and a lazy row iterable."""
        ...


class Sink(Protocol):
    """Where results go. Receives the whole :class:`~elspeth.datatypes.RunResult` once the run ends."""

    def write(self, result: RunResult, ctx: PluginContext) -> MaybeAwaitable[Sequence[Artifact] | None]:
        """Persist the result; return the files written so they can be listed and signed."""
        ...


class LLMClient(Protocol):
    """Talks to a language model."""

    def generate(self, request: LLMRequest) -> MaybeAwaitable[LLMResponse]:
        """Send one chat request and return the reply. Raise on failure; the runner records it."""
        ...


class LLMMiddleware(Protocol):
    """Sees every request before the client and every response after it. Both methods are optional.

    A middleware may also define the outcome methods ``on_success(request, response)``,
    ``on_error(request, failed)`` and ``on_refused(request, error, response)`` (exactly one is called
    per call) and ``use_retry_policy(policy)``; see docs/plugin-hooks.md.
    """

    def before_request(self, request: LLMRequest) -> MaybeAwaitable[LLMRequest]:
        """Return the request to send (possibly changed); raise to refuse it."""
        ...

    def after_response(self, request: LLMRequest, response: LLMResponse) -> MaybeAwaitable[LLMResponse]:
        """Return the response to pass on (possibly changed); raise to reject it."""
        ...


class RateLimiter(Protocol):
    """Decides when a request may be sent."""

    def acquire(self, request: LLMRequest) -> MaybeAwaitable[None]:
        """Wait until ``request`` may be sent."""
        ...


class CostTracker(Protocol):
    """Prices every response and keeps totals."""

    def record(self, request: LLMRequest, response: LLMResponse) -> MaybeAwaitable[float | None]:
        """Return the cost of this call (or None if unknown) and add it to the totals."""
        ...

    def summary(self) -> Mapping[str, Any]:
        """Totals for the run metadata. Called synchronously: a plain ``def``."""
        ...


class Processor(Protocol):
    """Transforms a row's values before (or after) the orchestrator's own work."""

    def process(self, data: Mapping[str, Any]) -> MaybeAwaitable[Mapping[str, Any] | None]:
        """Return the new values, or None to leave the row as it is."""
        ...


@runtime_checkable
class ResponseCache(Protocol):
    """A utility that answers repeated LLM calls (``response_cache``); the LLM pipeline consults it.

    ``discard(key)`` is optional: with it, an answer the caller rejected is evicted, never replayed.
    """

    def lookup(self, key: str) -> MaybeAwaitable[LLMResponse | None]:
        """The stored answer under ``key`` (see :func:`elspeth.orchestration.pipeline.cache_key`), or None."""
        ...

    def store(self, key: str, response: LLMResponse) -> MaybeAwaitable[None]:
        """Keep a live answer under ``key`` for a later call."""
        ...


@runtime_checkable
class Enricher(Protocol):
    """A utility that adds fields to every row (``retrieval``), applied after the processors by ``ctx.preprocess``.

    Declare the fields it adds in ``adds_fields`` so templates using them pass the checks.
    """

    def enrich(self, data: Mapping[str, Any]) -> MaybeAwaitable[Mapping[str, Any] | None]:
        """Return the row's values with the added fields, or None to leave them."""
        ...


@runtime_checkable
class CallsServices(Protocol):
    """Any plugin that sends data over the network says where, so ``allowed_endpoints`` can check it.

    An LLM client may instead keep its one URL in ``endpoint``. Every URL is checked before any row,
    and one off the list is reported at the plugin's settings line.

    Attributes:
        endpoints: the http(s) URLs the plugin calls (a service's base URL is enough: the check allows
            paths under an allowed entry).

    """

    endpoints: Sequence[str]


Utility: TypeAlias = ResponseCache | Enricher
"""What the ``utility`` domain holds: a plugin offering the run a capability core knows, a
:class:`ResponseCache` (the first in ``utilities`` is the run's cache) or an :class:`Enricher`. A
utility may have both, or neither and serve an orchestrator that knows its own methods (found in
``ctx.utilities``); it may also declare ``needs_fields``/``adds_fields`` and :class:`CallsServices`."""


class Orchestrator(Protocol):
    """An orchestration mode: how rows become records.

    ``check`` runs during ``elspeth validate`` and before every run: it validates whatever the
    orchestrator's options refer to (templates against columns, sub-plugins) and makes no LLM call.
    Like ``run`` it may be ``async def`` (awaited on the event loop) or ``def`` (run in a worker thread).
    """

    def check(self, columns: Sequence[str], ctx: OrchestrationContext) -> MaybeAwaitable[None]:
        """Raise :class:`~elspeth.errors.ConfigError` naming every problem found; ``def`` or ``async def``."""
        ...

    def run(self, table: Table, ctx: OrchestrationContext) -> MaybeAwaitable[RunResult]:
        """Process the table and return the run's result."""
        ...


class Executor(Protocol):
    """Where an orchestrator's rows are run: ``local`` (this process, the default) or a cluster.

    The engine hands ``run`` the built orchestrator, the table and the run's context once every
    check has passed and the run store is open; it returns the orchestrator's result, which the
    engine hands to the sinks. An executor never changes what a run computes, only where.
    """

    def run(self, orchestrator: Orchestrator, table: Table, ctx: OrchestrationContext) -> MaybeAwaitable[RunResult]:
        """Run ``orchestrator`` over ``table`` and return its result."""
        ...
