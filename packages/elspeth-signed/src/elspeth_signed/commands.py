"""``elspeth verify``, added to the command line through the ``register_commands`` hook.

Named in the ``elspeth.commands`` entry-point group, so the CLI imports this module (and nothing else
of this distribution) to list and run the command; the checking itself is imported when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elspeth import hookimpl

__all__ = ["register_commands"]


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """Add ``elspeth verify DIR``."""

    @cli.command()
    def verify(
        directory: Annotated[Path, typer.Argument(help="The signed bundle's folder, or the output folder holding it.")],
        key_env: Annotated[
            str | None,
            typer.Option("--key-env", help="Environment variable with the key (default ELSPETH_SIGNING_KEY)."),
        ] = None,
    ) -> None:
        """Check a signed bundle: exit 0 if every file and the signature match, 1 if not, 2 for bad input."""
        from elspeth_signed._verify import verify_command

        raise typer.Exit(verify_command(directory, key_env))
