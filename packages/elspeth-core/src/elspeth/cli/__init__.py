"""The ``elspeth`` command line.

Exit codes: 0 success, 1 the run failed, 2 bad input (settings, plugins, arguments), 3 a quality gate
failed (the run finished; see ``gates:``), 130 stopped by Ctrl-C. Errors go to
stderr without a traceback unless ``--debug``. Heavy modules load inside the commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from elspeth.cli._commands import PluginCommands
from elspeth.cli._guard import STATE, _fail, guarded
from elspeth.errors import ElspethError

__all__ = ["app", "main"]

# PluginCommands adds the commands plugins register (register_commands) only when a command line needs them
app = typer.Typer(
    name="elspeth",
    cls=PluginCommands,
    help="Elspeth: orchestrate work over tabular data, usually with LLM calls.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
plugins_app = typer.Typer(help="List and inspect installed plugins.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(plugins_app, name="plugins")
runs_app = typer.Typer(help="The history of runs kept in the run store.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
cache_app = typer.Typer(help="The response cache.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


def _registry() -> Any:
    from elspeth.discovery import load_registry

    return load_registry(disabled=STATE.disabled)


def _version(value: bool) -> None:
    if value:
        from elspeth.discovery import _core_version

        typer.echo(f"elspeth-core {_core_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")] = False,
    disable_plugin: Annotated[
        list[str] | None,
        typer.Option("--disable-plugin", help="Do not load this entry point or distribution (repeatable)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    STATE.debug = debug
    STATE.disabled = list(disable_plugin or [])
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    from elspeth.scrub import install_log_scrubbing

    install_log_scrubbing()  # no secret's value in any log line, whatever a server echoed


@app.command()
def run(
    settings: Annotated[Path, typer.Argument(help="The settings YAML file.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any row failed; exit 2 if the input has no data rows.")
    ] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Show a progress bar (default: on a terminal).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="RUN_ID", help="Continue this run: finished rows are not sent again."),
    ] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="With --resume: run the rows that failed again.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run though the cost estimate exceeds the budget; with --resume: resume though the settings changed.",
        ),
    ] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not answer calls from the response cache.")] = False,
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", min=1, help="A streaming run stops after this many messages."),
    ] = None,
    max_seconds: Annotated[
        float | None,
        typer.Option("--max-seconds", min=0.0, help="Stop taking rows or messages after this many seconds."),
    ] = None,
) -> None:
    """Run the settings file and write its sinks. Ctrl-C stops taking rows; a second Ctrl-C quits at once."""
    from elspeth.cli._run import run_command
    from elspeth.resume import RunOptions

    if retry_errors and not resume:
        _fail("--retry-errors goes with --resume RUN_ID", 2)
    options = RunOptions(
        resume=resume,
        retry_errors=retry_errors,
        force=force,
        use_cache=not no_cache,
        max_messages=max_messages,
        max_seconds=max_seconds,
    )
    code = guarded(lambda: run_command(settings, _registry(), strict=strict, progress=progress, options=options))
    raise typer.Exit(code)


@app.command()
def validate(
    settings: Annotated[Path, typer.Argument(help="The settings YAML file.")],
    strict: Annotated[bool, typer.Option("--strict", help="Exit 2 if the input has no data rows.")] = False,
) -> None:
    """Check everything a run would check, without processing any row or calling an LLM."""
    from elspeth.cli._run import validate_command

    guarded(lambda: validate_command(settings, _registry(), strict=strict))


@app.command()
def estimate(
    settings: Annotated[Path, typer.Argument(help="The settings YAML file.")],
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=0, help="Output tokens assumed per call that sets no max_tokens.")
    ] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
) -> None:
    """Estimate a run's LLM calls, tokens and cost (live and in batch) before making any call."""
    from elspeth.cli._estimate import estimate_command

    guarded(lambda: estimate_command(settings, _registry(), output_tokens=output_tokens, as_json=as_json))


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the example project.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
) -> None:
    """Write a working example project that runs offline on the mock LLM client."""

    def write() -> None:
        import shutil  # here, not at the top: `elspeth --help` should not pay for them
        from importlib import resources

        _check_example_can_run(_registry(), directory)
        source = resources.files("elspeth") / "_example"
        directory.mkdir(parents=True, exist_ok=True)
        names = ["settings.yaml", "data.csv"]
        clashes = [n for n in names if (directory / n).exists()]
        if clashes and not force:
            raise ElspethError(f"{directory} already has {', '.join(clashes)}; use --force to overwrite")
        for name in names:
            with resources.as_file(source / name) as path:
                shutil.copyfile(path, directory / name)
        typer.echo(f"wrote {directory / 'settings.yaml'} and {directory / 'data.csv'}")
        typer.echo(f"next: elspeth run {directory / 'settings.yaml'}")

    guarded(write)


EXAMPLE_ORCHESTRATOR = ("experiment", "elspeth-orchestrator-experiment")


def _check_example_can_run(registry: Any, directory: Path) -> None:
    """Refuse to write the example where it could not run: it needs the ``experiment`` orchestrator.

    Core alone has no orchestrator, and a project that fails on its first ``elspeth run`` teaches
    nothing; better to say at once what to install (or enable).
    """
    name, distribution = EXAMPLE_ORCHESTRATOR
    if name in registry.names("orchestrator"):
        return
    found = [
        *registry.find(f"orchestrator:{name}"),
        *(i for i in registry if not i.domain and i.distribution == distribution),
    ]
    if not found:
        state = f"{distribution} is not installed"
        fix = f"install it with `pip install {distribution}`"
    else:
        info = found[0]
        state = f"{info.distribution} {info.version} is {info.status} ({info.error})"
        if info.status == "disabled":
            fix = "enable it (see ELSPETH_LOAD_PLUGINS, ELSPETH_DISABLE_PLUGINS and --disable-plugin)"
        else:
            fix = f"fix it or reinstall it with `pip install --force-reinstall {distribution}`"
    raise ElspethError(
        f"the example project runs on the '{name}' orchestrator, but {state}; {fix}, "
        f"then run `elspeth init {directory}` again. Nothing was written."
    )


@plugins_app.command("list")
def plugins_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every plugin: name, domain, distribution, version, status and error."""

    def show() -> None:
        entries = [info.to_dict() for info in _registry()]
        entries.sort(key=lambda e: (e["status"] != "ok", e["domain"], e["name"]))
        if as_json:
            import json

            typer.echo(json.dumps(entries, indent=2))
            return
        headers = ["name", "domain", "distribution", "version", "status"]
        rows = [[str(e[h] or "-") for h in headers] for e in entries]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)] if rows else []
        typer.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in rows:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        for e in entries:
            if e["error"]:
                typer.echo(f"\n{e['name']} ({e['distribution']}) is {e['status']}: {e['error']}")

    guarded(show)


@plugins_app.command("show")
def plugins_show(
    name: Annotated[str, typer.Argument(help="The plugin's name, or DOMAIN:NAME.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a plugin's options with their types, defaults and descriptions."""
    from elspeth.cli._show import show_plugin

    guarded(lambda: show_plugin(_registry(), name, as_json))


_SETTINGS_FOR_STORE = typer.Option(
    "--settings", "-s", help="Settings file whose store to read (default: ./output/elspeth-runs.sqlite)."
)


@runs_app.command("list")
def runs_list(
    settings: Annotated[Path | None, _SETTINGS_FOR_STORE] = None,
    store: Annotated[Path | None, typer.Option("--store", help="The run store file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first: status, rows done, failed and pending, cost, timings."""
    from elspeth.cli._history import list_runs

    guarded(lambda: list_runs(settings, store, as_json))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    settings: Annotated[Path | None, _SETTINGS_FOR_STORE] = None,
    store: Annotated[Path | None, typer.Option("--store", help="The run store file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: status, rows, cost, timings, plugins and versions, and how to resume it."""
    from elspeth.cli._history import show_run

    guarded(lambda: show_run(run_id, settings, store, as_json))


@cache_app.command("stats")
def cache_stats(
    settings: Annotated[Path | None, _SETTINGS_FOR_STORE] = None,
    path: Annotated[Path | None, typer.Option("--path", help="The cache file.")] = None,
) -> None:
    """How many answers the response cache holds."""
    from elspeth.cli._history import cache_command

    guarded(lambda: cache_command("stats", settings, path))


@cache_app.command("clear")
def cache_clear(
    settings: Annotated[Path | None, _SETTINGS_FOR_STORE] = None,
    path: Annotated[Path | None, typer.Option("--path", help="The cache file.")] = None,
) -> None:
    """Remove every answer from the response cache."""
    from elspeth.cli._history import cache_command

    guarded(lambda: cache_command("clear", settings, path))


def main() -> None:
    """Entry point of the ``elspeth`` script."""
    try:
        app()
    except BrokenPipeError:
        # the reader went away (`elspeth plugins list | head`): not an error of ours
        sys.stderr.close()
        sys.exit(0)
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, int) and code not in (0, 1, 2, 3, 130):
            sys.exit(2)  # click reports usage errors as 2 already; anything else unexpected is bad input
        raise
