"""Elspeth's hook specifications.

A plugin distribution names a module in the ``elspeth`` entry-point group; that module holds
``@hookimpl`` functions whose names match the specs below. Implementations may accept fewer
arguments than the spec names, so specs can grow without breaking plugins. Every hook is
documented in ``docs/plugin-hooks.md``.

Example:
    A distribution's ``pyproject.toml``::

        [project.entry-points.elspeth]
        shout = "elspeth_shout.plugin"

    and ``elspeth_shout/plugin.py``::

        from elspeth import hookimpl

        @hookimpl
        def register_sinks(register):
            register(ShoutSink)

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from elspeth.registrars import ControlRegistrar, HookspecAdder, Registrar

if TYPE_CHECKING:
    import typer

    from elspeth.datatypes import Failure, LLMRequest, LLMResponse, Record, RunResult

__all__ = [
    "ControlRegistrar",
    "HookspecAdder",
    "Registrar",
    "hookimpl",
    "hookspec",
]

PROJECT = "elspeth"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(historic=True)
def add_hookspecs(add: HookspecAdder) -> None:
    """Add hookspecs of your own, for plugin domains that only your distribution knows.

    Fires once for every registered plugin, before any ``register_*`` hook, as pytest's
    ``pytest_addhooks`` does.

    Args:
        add: call ``add(module, domains={"register_widgets": "widget"})``.

    Example::

        @hookimpl
        def add_hookspecs(add):
            from elspeth_experiment import hookspecs
            add(hookspecs, domains={"register_row_plugins": "row_plugin"})

    """


@hookspec
def register_orchestrators(register: Registrar) -> None:
    """Register orchestration modes (domain ``orchestrator``).

    Args:
        register: call ``register(MyOrchestrator)`` once per orchestrator class.

    Example::

        @hookimpl
        def register_orchestrators(register):
            register(ExperimentOrchestrator)

    """


@hookspec
def register_datasources(register: Registrar) -> None:
    """Register datasources (domain ``datasource``): plugins with ``load(ctx) -> Table``.

    Args:
        register: call ``register(MySource)`` once per datasource class.

    Example::

        @hookimpl
        def register_datasources(register):
            register(CsvDataSource)

    """


@hookspec
def register_sinks(register: Registrar) -> None:
    """Register result sinks (domain ``sink``): plugins with ``write(result, ctx)``.

    Args:
        register: call ``register(MySink)`` once per sink class.

    Example::

        @hookimpl
        def register_sinks(register):
            register(JsonlSink)

    """


@hookspec
def register_llm_clients(register: Registrar) -> None:
    """Register LLM clients (domain ``llm_client``): plugins with ``generate(request) -> LLMResponse``.

    Args:
        register: call ``register(MyClient)`` once per client class.

    Example::

        @hookimpl
        def register_llm_clients(register):
            register(MockClient)

    """


@hookspec
def register_llm_middleware(register: Registrar) -> None:
    """Register LLM middleware (domain ``llm_middleware``): ``before_request`` / ``after_response``.

    Args:
        register: call ``register(MyMiddleware)`` once per middleware class.

    Example::

        @hookimpl
        def register_llm_middleware(register):
            register(AuditLogger)

    """


@hookspec
def register_controls(register: ControlRegistrar) -> None:
    """Register controls: rate limiters (domain ``rate_limiter``) and cost trackers (``cost_tracker``).

    Args:
        register: call ``register(MyLimiter, kind="rate_limiter")`` or ``kind="cost_tracker"``.

    Example::

        @hookimpl
        def register_controls(register):
            register(FixedWindow, kind="rate_limiter")

    """


@hookspec
def register_processors(register: Registrar) -> None:
    """Register processing plugins (domain ``processor``): ``process(data) -> data``, usable by any orchestrator.

    Args:
        register: call ``register(MyProcessor)`` once per processor class.

    Example::

        @hookimpl
        def register_processors(register):
            register(TextCleaning)

    """


@hookspec
def register_utilities(register: Registrar) -> None:
    """Register utilities (domain ``utility``): cross-cutting helpers such as caches and retrieval.

    Args:
        register: call ``register(MyUtility)`` once per utility class.

    Example::

        @hookimpl
        def register_utilities(register):
            register(ResponseCache)

    """


@hookspec
def run_started(run_id: str, name: str, orchestrator: str, settings: Mapping[str, Any]) -> None:
    """Observe the start of a run, after every check has passed and before the first row.

    Args:
        run_id: the run's unique id.
        name: the settings' ``name``.
        orchestrator: the orchestrator plugin's name.
        settings: the validated settings as plain data (secrets are never in settings).

    Example::

        @hookimpl
        def run_started(run_id, name):
            print(f"run {run_id} ({name}) started")

    """


@hookspec
def row_finished(run_id: str, record: Record | None, failure: Failure | None) -> None:
    """Observe every finished row, as it finishes; exactly one of ``record`` and ``failure`` is set.

    Called on the event loop: keep it quick, and never block.

    Args:
        run_id: the run's unique id.
        record: the row's record, if it succeeded.
        failure: the row's failure, if it failed.

    Example::

        @hookimpl
        def row_finished(record, failure):
            if failure is not None:
                print("row", failure.row_id, "failed:", failure.error)

    """


@hookspec
def run_finished(run_id: str, result: RunResult) -> None:
    """Observe the end of a run, after every sink has written.

    Args:
        run_id: the run's unique id.
        result: the run's records, failures, aggregates and metadata.

    Example::

        @hookimpl
        def run_finished(result):
            print(result.metadata.succeeded, "rows done")

    """


@hookspec
def register_observers(register: Registrar) -> None:
    """Register observer plugins (domain ``observer``), which the settings' ``observers`` list names.

    An observer's methods are ``@hookimpl`` implementations of the observer hooks; for the run it is
    registered in the plugin manager, so its hooks are called through pluggy like a module's.
    """


@hookspec
def llm_attempt_finished(
    run_id: str,
    row_id: str | None,
    llm: str,
    attempt: int,
    outcome: Literal["ok", "retry", "failed"],
    status: int | None,
    error_type: str | None,
    latency_s: float,
    wait_s: float,
    tokens: Mapping[str, int],
    cost: float | None,
    request: LLMRequest,
    response: LLMResponse | None,
) -> None:
    """Observe one attempt of an LLM call as it ends; ``outcome`` ``retry``: another follows after ``wait_s``."""


@hookspec
def stage_finished(
    run_id: str,
    row_id: str | None,
    stage: str,
    started: float,
    duration_s: float,
    failed: bool,
    error: str | None,
) -> None:
    """Observe a stage of a row or a sink's write (``sink:<name>``, with ``row_id`` None) as it ends.

    A row's stages: ``processors``, ``work``, ``validation:<name>``, ``commit``, and last ``row``.
    """


@hookspec
def gauge_reported(run_id: str, name: str, value: float) -> None:
    """Observe a gauge's new value: ``in_flight``, ``rate_limiter_rate``, ``consumer_lag`` (an orchestrator's)."""


@hookspec
def register_executors(register: Registrar) -> None:
    """Register executors (domain ``executor``): where and how an orchestrator's rows are run.

    ``local`` (core's, the default) runs the orchestrator in this process on one asyncio event
    loop; another executor (``dask`` in ``elspeth-executor-dask``) runs the same row runner over
    partitions elsewhere. Settings choose one with ``executor: {plugin: NAME, options: {...}}``.

    Args:
        register: call ``register(MyExecutor)`` once per executor class; the class implements
            :class:`~elspeth.protocols.Executor`.

    Example::

        @hookimpl
        def register_executors(register):
            register(LocalExecutor)

    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the ``elspeth`` command line, as ``llm``'s hook of the same name does.

    Called only for modules named in the ``elspeth.commands`` entry-point group (not the ``elspeth``
    group), and only when a command line needs plugin commands: ``elspeth --help``, or a command
    core does not have. So keep that module light (typer and ``elspeth`` at the top, the command's
    work imported inside it). An :class:`~elspeth.ElspethError` a command raises is printed as
    ``error: ...`` with its exit code, like core's commands; ``raise typer.Exit(code)`` sets the code.

    Args:
        cli: a ``typer.Typer`` app; add commands with ``@cli.command()`` (or ``cli.add_typer``).

    Example::

        # pyproject.toml: [project.entry-points."elspeth.commands"] hello = "elspeth_hello.commands"
        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello(name: str) -> None:
                '''Say hello.'''
                print(f"hello {name}")

    """


CORE_DOMAINS: dict[str, str] = {
    "register_orchestrators": "orchestrator",
    "register_datasources": "datasource",
    "register_sinks": "sink",
    "register_llm_clients": "llm_client",
    "register_llm_middleware": "llm_middleware",
    "register_controls": "controls",
    "register_processors": "processor",
    "register_utilities": "utility",
    "register_observers": "observer",
    "register_executors": "executor",
}
"""Registration hook name to domain. ``register_controls`` registers into ``rate_limiter`` or ``cost_tracker``."""

LIFECYCLE_HOOKS = (
    "run_started",
    "row_finished",
    "run_finished",
    "llm_attempt_finished",
    "stage_finished",
    "gauge_reported",
)
