"""``elspeth view``, added to the command line through the ``register_commands`` hook.

Named in the ``elspeth.commands`` entry-point group, so the CLI imports only this module to list and
run the command; the server is imported when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elspeth import hookimpl

__all__ = ["register_commands"]


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """Add ``elspeth view [--store FILE] [--port N]``."""

    @cli.command()
    def view(
        store: Annotated[
            Path, typer.Option("--store", help="The run store file (default: ./output/elspeth-runs.sqlite).")
        ] = Path("output") / "elspeth-runs.sqlite",
        port: Annotated[
            int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")
        ] = 8765,
    ) -> None:
        """Browse the run store in a web page on 127.0.0.1 (read-only); Ctrl-C stops it. Exit 2 if it is no store."""
        from elspeth_view.queries import StoreUnreadable
        from elspeth_view.server import serve

        try:
            serve(store, port, ready=lambda url: typer.echo(f"elspeth view: serving {store} at {url} (Ctrl-C stops)"))
        except StoreUnreadable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(
                f"error: cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass --port 0 for a free one", err=True
            )
            raise typer.Exit(2) from None
