"""The CLI's error policy, shared by core's commands and the commands plugins add.

An Elspeth error is ``error: MESSAGE`` on stderr and its exit code; anything unexpected is exit 1
with a hint to run with ``--debug``, which shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

import typer

from elspeth.errors import ElspethError

__all__ = ["STATE", "guarded"]

T = TypeVar("T")


@dataclass
class _State:
    debug: bool = False
    disabled: list[str] = field(default_factory=list)


STATE = _State()


def _fail(message: str, code: int) -> NoReturn:
    from elspeth.scrub import scrub_secrets

    typer.echo(f"error: {scrub_secrets(message)}", err=True)
    raise typer.Exit(code)


def guarded(func: Callable[[], T]) -> T:
    """Run ``func``; turn Elspeth errors into a message on stderr and their exit code."""
    try:
        return func()
    except ElspethError as exc:
        if STATE.debug:
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        raise
    except Exception as exc:
        if STATE.debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
