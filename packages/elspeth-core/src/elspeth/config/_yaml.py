"""YAML loading that remembers where every value stood, so errors can name the line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from elspeth.errors import ConfigError, Problem

if TYPE_CHECKING:
    import yaml

Loc = tuple[str | int, ...]


def format_loc(loc: Sequence[str | int]) -> str:
    """Render a location tuple as ``sinks[1].options.path``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class SourceMap:
    """Maps a location in the loaded data to its 1-based line in the file."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_for(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc``, or of its nearest parent that exists in the file."""
        key = tuple(loc)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        """A :class:`Problem` at ``loc`` with this file's name and the line filled in."""
        return Problem(format_loc(loc), message, self.file, self.line_for(loc))


def _construct(node: yaml.Node, loader: yaml.SafeLoader, loc: Loc, lines: dict[Loc, int]) -> Any:
    import yaml

    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, loader, child, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, (*loc, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text and return the data with its :class:`SourceMap`.

    Raises:
        ConfigError: the text is not valid YAML; the message names the line.

    """
    import yaml  # here, not at the top: listing plugins never parses YAML

    source_map = SourceMap(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else _construct(node, loader, (), source_map.lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        raise ConfigError(Problem("", f"not valid YAML: {reason}", file, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(Problem("", f"not valid YAML: {exc}", file)) from None
    finally:
        loader.dispose()
    return data, source_map


def load_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"settings file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    return load_yaml_text(text, path.name)


def _suggest_field(name: str, model: type[BaseModel] | None, message: str) -> str:
    import difflib

    assert model is not None
    known = [f.alias or key for key, f in model.model_fields.items()]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key (known keys: {', '.join(known)})"


@dataclass
class Checker:
    """Collects every problem found while checking settings, each tied to its place in the file."""

    source_map: SourceMap
    problems: list[Problem] = field(default_factory=list)

    def add(self, loc: Iterable[str | int], message: str) -> None:
        """Record a problem at ``loc``."""
        self.problems.append(self.source_map.problem(tuple(loc), message))

    def add_validation_error(self, loc: Loc, exc: ValidationError, model: type[BaseModel] | None = None) -> None:
        """Record each error of a pydantic validation under ``loc``.

        With ``model``, an unknown key at its top level gets the closest known key suggested.
        """
        for err in exc.errors(include_url=False):
            message = err["msg"]
            if err["type"] == "value_error" and message.startswith("Value error, "):
                message = message.removeprefix("Value error, ")
            message = message[0].lower() + message[1:] if message else message
            if err["type"] == "extra_forbidden":
                known = model is not None and len(err["loc"]) == 1
                message = _suggest_field(str(err["loc"][0]), model, message) if known else "unknown key"
            self.add((*loc, *err["loc"]), message)

    def raise_if_any(self) -> None:
        """Raise :class:`ConfigError` with every problem recorded so far."""
        if self.problems:
            raise ConfigError(list(self.problems))
