"""Exceptions that carry a message a user can act on.

Every error a user can cause is an :class:`ElspethError`. The CLI prints its message without a
traceback (unless ``--debug``) and exits with :attr:`ElspethError.exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elspeth.datatypes import Row

__all__ = [
    "ConfigError",
    "ElspethError",
    "PluginError",
    "Problem",
    "ProcessorFailed",
    "RunFailed",
    "ValidationFailed",
]


class ElspethError(Exception):
    """Base class of every error Elspeth reports to a user.

    Attributes:
        exit_code: the process exit code the CLI uses for this error (2 for bad input).

    """

    exit_code: int = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a settings file, tied to the place it was found.

    Attributes:
        path: where in the settings, as ``sinks[1].options.path``.
        message: what is wrong and, where possible, what to do.
        file: the settings file's name, if known.
        line: the 1-based line of ``path`` (or its nearest parent) in ``file``, if known.

    """

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file and self.line:
            where = f" ({self.file}:{self.line})"
        elif self.file:
            where = f" ({self.file})"
        prefix = f"{self.path}: " if self.path else ""
        return f"{prefix}{self.message}{where}"


class ConfigError(ElspethError):
    """Settings that cannot be used; holds every problem found, not only the first."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(ElspethError):
    """A plugin is missing, broken, or ambiguous."""


class RunFailed(ElspethError):
    """A run started but could not finish.

    Attributes:
        result: what the run produced before it failed, if anything (rows done are never lost).

    """

    exit_code = 1

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class ValidationFailed(Exception):
    """Raised by a validation plugin when a response breaks its rule.

    Args:
        reason: a short sentence saying which rule failed and how.

    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ProcessorFailed(Exception):
    """A processor or enriching utility raised while a row was prepared (``OrchestrationContext.preprocess``).

    Record the row's failure with :attr:`row`, not the row as it came in: :attr:`row` is the row as the
    last step that succeeded left it, so what an earlier ``pii_redaction`` masked stays masked in the
    failure, the sinks and the run store.

    Example::

        try:
            row = await ctx.preprocess(row)
        except ProcessorFailed as exc:
            return Failure(row.id, exc.row.data, "processor", str(exc))

    Attributes:
        name: the plugin name of the processor or utility that raised.
        error: what it raised.
        row: the row after the last step that succeeded (the row as it came in if the first step raised).

    """

    def __init__(self, name: str, error: BaseException, row: Row) -> None:
        self.name = name
        self.error = error
        self.row = row
        super().__init__(f"{type(error).__name__}: {error}")
