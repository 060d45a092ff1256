"""YAML loading that remembers where every value stood, so errors can name the line."""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from elspeth.errors import ConfigError, Problem

if TYPE_CHECKING:
    import yaml

Loc = tuple[str | int, ...]

MAX_BYTES = 1 << 20
"""A settings file larger than this (1 MiB) is refused: real ones are a few kilobytes."""
MAX_DEPTH = 64
"""Nesting deeper than this (mappings and lists within each other) is refused."""
MAX_VALUES = 100_000
"""A document that expands (through anchors and aliases) to more values than this is refused: an alias bomb."""


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


@dataclass
class _Reader:
    """Builds the data from the YAML nodes, noting each value's line and every key given twice."""

    loader: yaml.SafeLoader
    file: str
    lines: dict[Loc, int]
    duplicates: list[Problem] = field(default_factory=list)

    def construct(self, node: yaml.Node, loc: Loc) -> Any:
        import yaml

        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            # keys written in this mapping, as opposed to those a `<<: *anchor` merge brings in, which it may override
            own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            written: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int):
                    key = str(key)
                child = (*loc, key)
                line = key_node.start_mark.line + 1
                if id(key_node) in own:
                    if key in written:
                        self.duplicates.append(self._duplicate(child, written[key], line))
                    written[key] = line
                self.lines[child] = line
                result[key] = self.construct(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.construct(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str) and "\0" in value:  # no path, name or prompt has one; the OS refuses it in paths
            line = node.start_mark.line + 1
            self.duplicates.append(
                Problem(format_loc(loc), "a NUL byte (\\0) is not allowed in a settings value", self.file, line)
            )
        return value

    def _duplicate(self, loc: Loc, first: int, again: int) -> Problem:
        message = f"duplicate key: first given on line {first}, again on line {again}; keep only one of them"
        return Problem(format_loc(loc), message, self.file, again)


def _unreadable(exc: yaml.reader.ReaderError, text: str, file: str) -> ConfigError:
    """A character YAML does not allow (a control character), at its line."""
    line = text.count("\n", 0, exc.position) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return ConfigError(Problem("", f"not valid YAML: {exc.reason}: character U+{code:04X}", file, line))


class _Expands(Exception):
    """The document, its aliases expanded, holds too many values, or nests too deep through them."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _measure(node: yaml.Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> tuple[int, int]:
    """The values ``node`` expands to and its height, each node measured once: an alias bomb costs nothing."""
    import yaml

    deep = f"nested more than {MAX_DEPTH} levels deep through aliases (an anchor used inside itself?)"
    if depth > MAX_DEPTH:
        raise _Expands(deep)
    if isinstance(node, yaml.ScalarNode):
        return 1, 1
    key = id(node)
    if key in memo:
        size, height = memo[key]
        if depth + height - 1 > MAX_DEPTH:
            raise _Expands(deep)
        return size, height
    if key in active:
        raise _Expands(deep)
    active.add(key)
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
    size, height = 1, 1
    for child in children:
        more, below = _measure(child, depth + 1, memo, active)
        size, height = size + more, max(height, below + 1)
        if size > MAX_VALUES:
            raise _Expands(f"the document expands to more than {MAX_VALUES:,} values through aliases (an alias bomb?)")
    active.discard(key)
    memo[key] = (size, height)
    return size, height


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse an alias bomb or an anchor inside itself before building any data, at the top-level key holding it."""
    import yaml

    memo: dict[int, tuple[int, int]] = {}
    pairs = root.value if isinstance(root, yaml.MappingNode) else [(root, root)]
    total = 0
    for key, value in pairs:
        try:
            total += _measure(value, 2, memo, set())[0]
            if total > MAX_VALUES:
                _measure(root, 1, {}, set())  # raises, naming why
        except _Expands as exc:
            raise ConfigError(Problem("", f"refused: {exc.reason}", file, key.start_mark.line + 1)) from None


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _loader(text: str) -> yaml.SafeLoader:
    """A safe loader whose composer refuses nesting deeper than :data:`MAX_DEPTH` (instead of a RecursionError)."""
    import yaml

    class Bounded(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _TooDeep(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Bounded(text)


def load_yaml_text(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text and return the data with its :class:`SourceMap`.

    Raises:
        ConfigError: the text is not valid YAML, or a mapping gives a key twice (each such key is named
            with both its lines); the message names the line.

    """
    import yaml  # here, not at the top: listing plugins never parses YAML

    if len(text) > MAX_BYTES:
        raise ConfigError(Problem("", f"refused: the settings are larger than {MAX_BYTES:,} bytes", file))
    source_map = SourceMap(file)
    try:
        loader = _loader(text)  # reads the first characters: a control character is refused here
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, file) from None
    reader = _Reader(loader, file, source_map.lines)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, file)
        data = None if node is None else reader.construct(node, ())
    except _TooDeep as exc:
        message = f"refused: the settings are nested more than {MAX_DEPTH} levels deep"
        raise ConfigError(Problem("", message, file, exc.line)) from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        raise ConfigError(Problem("", f"not valid YAML: {reason}", file, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(Problem("", f"not valid YAML: {exc}", file)) from None
    finally:
        loader.dispose()
    if reader.duplicates:
        raise ConfigError(reader.duplicates)
    return data, source_map


def load_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a :class:`ConfigError`."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"settings file {path} is not a regular file")
        if info.st_size > MAX_BYTES:
            raise ConfigError(Problem("", f"refused: the settings are larger than {MAX_BYTES:,} bytes", path.name))
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
        """Raise :class:`ConfigError` with every problem recorded so far, each once (in the order first found).

        A problem in a value every experiment of a suite shares is found once per experiment: it is
        reported once, at its line.
        """
        if self.problems:
            raise ConfigError(list(dict.fromkeys(self.problems)))

    def moved(self, moves: Mapping[Loc, Loc]) -> Checker:
        """A checker recording into this one, with a problem under a key of ``moves`` put under its value instead.

        For a value assembled from two places in the file (a suite variant's ``llm_options`` merged over
        the settings' ``llm.options``), so that each problem is reported where its part was written.
        The longest matching key wins.

        Example::

            variant = checker.moved({("llm", "options", "seed"): ("experiments", 1, "llm_options", "seed")})
        """
        return _Moved(self.source_map, self.problems, dict(moves))


@dataclass
class _Moved(Checker):
    moves: dict[Loc, Loc] = field(default_factory=dict)

    def add(self, loc: Iterable[str | int], message: str) -> None:
        where = tuple(loc)
        for old in sorted(self.moves, key=len, reverse=True):
            if where[: len(old)] == old:
                where = (*self.moves[old], *where[len(old) :])
                break
        super().add(where, message)
