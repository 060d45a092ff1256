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

from elspeth.types import Artifact, LLMRequest, LLMResponse, RunResult, Table

if TYPE_CHECKING:
    from elspeth.orchestration.context import OrchestrationContext, PluginContext

__all__ = [
    "CostTracker",
    "DataSource",
    "LLMClient",
    "LLMMiddleware",
    "Orchestrator",
    "PluginClass",
    "Processor",
    "RateLimiter",
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
    """Where rows come from. ``load`` returns a :class:`~elspeth.types.Table` whose rows are read lazily."""

    def load(self, ctx: PluginContext) -> MaybeAwaitable[Table]:
        """Open the source and return its columns and a lazy row iterable."""
        ...


class Sink(Protocol):
    """Where results go. Receives the whole :class:`~elspeth.types.RunResult` once the run ends."""

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


class Utility(Protocol):
    """A cross-cutting helper (cache, retrieval, ...). Orchestrators use the capabilities they know."""


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
