"""Decoding CSV bytes and converting CSV text: encodings, the first undecodable byte, declared column types.

Shared by :mod:`elspeth.csvread` and by CSV datasources of other distributions.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import IO, Any, Literal

from elspeth.errors import ElspethError

__all__ = [
    "CONVERTERS",
    "EXPECTED",
    "ColumnType",
    "DataError",
    "OpenBytes",
    "choose_encoding",
    "decode_error",
    "detect_encoding",
    "locate_decode_error",
]

ColumnType = Literal["int", "float", "bool", "str", "date"]
OpenBytes = Callable[[], AbstractContextManager[IO[bytes]]]
"""Opens the input's bytes from the start as a buffered binary stream (a context manager); called once per pass."""

_CHUNK = 1 << 20
_INT = re.compile(r"[+-]?\d+")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class DataError(ElspethError):
    """The input data cannot be read as configured."""


def _to_int(text: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise ValueError
    return int(text)


def _to_float(text: str) -> float:
    if "_" in text:
        raise ValueError
    return float(text)


def _to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError


def _to_date(text: str) -> date:
    return date.fromisoformat(text.strip())


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": str,
    "date": _to_date,
}
EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true/false, yes/no or 1/0",
    "str": "text",
    "date": "a date as YYYY-MM-DD",
}


def detect_encoding(open_bytes: OpenBytes) -> tuple[str, str]:
    """The encoding ``auto`` picks, and why: a byte order mark, else UTF-8 if it all decodes, else cp1252."""
    with open_bytes() as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig", "UTF-8 byte order mark"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", "UTF-16 byte order mark"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(head)
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            pass
        else:
            return "utf-8", "valid UTF-8"
    line, offset, _ = locate_decode_error(open_bytes, "utf-8")
    return "cp1252", f"not UTF-8 at line {line}, byte offset {offset}; cp1252 is the fallback"


def locate_decode_error(open_bytes: OpenBytes, encoding: str) -> tuple[int, int, str]:
    """Line (1-based), byte offset (0-based) and reason of the first byte ``encoding`` cannot decode."""
    if codecs.lookup(encoding).name == "utf-8-sig":
        encoding = "utf-8"  # the BOM is skipped below; utf-8-sig would count offsets from after it
    decoder = codecs.getincrementaldecoder(encoding)()
    newlines = 0
    with open_bytes() as handle:
        head = handle.read(3)
        consumed = 3 if encoding == "utf-8" and head == codecs.BOM_UTF8 else 0
        chunk = head[consumed:] + handle.read(1 << 16)
        while True:
            state = decoder.getstate()
            try:
                newlines += decoder.decode(chunk, final=not chunk).count("\n")
            except UnicodeDecodeError as exc:
                # the decoder saw its pending bytes (state[0]) followed by this chunk
                pending = len(state[0])
                before = codecs.getincrementaldecoder(encoding)()
                before.setstate(state)
                good = before.decode(chunk[: max(exc.start - pending, 0)])
                bad = bytes(exc.object[exc.start : exc.end]).hex(" ")
                line = newlines + good.count("\n") + 1
                return line, consumed - pending + exc.start, f"{exc.reason} (byte 0x{bad})"
            consumed += len(chunk)
            if not chunk:
                return newlines + 1, consumed, "undecodable data"
            chunk = handle.read(1 << 16)


def decode_error(
    open_bytes: OpenBytes, encoding: str, *, name: str, detected: bool, error: type[ElspethError] = DataError
) -> ElspethError:
    """The error for input that ``encoding`` cannot decode, naming the line and byte offset of the first bad byte.

    Args:
        open_bytes: opens the input again, to find the byte.
        encoding: the encoding that failed.
        name: the input, as messages name it (``data.csv``, ``blob 'x.csv' in container 'c'``).
        detected: whether ``auto`` chose the encoding, which the message then says.
        error: the exception type to return.

    """
    line, offset, reason = locate_decode_error(open_bytes, encoding)
    chosen = " (auto-detected)" if detected else ""
    return error(
        f"{name} line {line} (byte offset {offset}): cannot decode as {encoding}{chosen}: {reason}; "
        "set `encoding` to the file's encoding, or to 'auto'"
    )


def choose_encoding(
    requested: str,
    open_bytes: OpenBytes,
    *,
    name: str,
    place: str,
    logger: logging.Logger,
    error: type[ElspethError] = DataError,
) -> str:
    """``requested`` once checked to be a known codec, or for ``auto`` the detected encoding (logged with why).

    Raises:
        ElspethError: of type ``error``, for an unknown encoding.

    """
    if requested.lower() != "auto":
        try:
            codecs.lookup(requested)
        except LookupError:
            raise error(f"unknown encoding '{requested}' for {place}") from None
        return requested
    encoding, why = detect_encoding(open_bytes)
    logger.info("%s: encoding auto-detected as %s (%s)", name, encoding, why)
    return encoding
