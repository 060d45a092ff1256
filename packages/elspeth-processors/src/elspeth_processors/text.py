"""The ``text_cleaning`` processor: Unicode normalisation, HTML stripping and whitespace tidying."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import inline
from elspeth_processors._common import chosen_columns

__all__ = ["TextCleaning", "strip_html"]

# Tags after which a reader sees a break, so "<p>a</p><p>b</p>" becomes "a\nb", not "ab".
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title"})
# Control characters other than tab, newline and carriage return, and invisible characters that only
# get in the way of matching and counting (zero-width space, word joiner, byte-order mark).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2060\ufeff]")
_HORIZONTAL = re.compile(r"[^\S\n]+")
_ANY_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_TAGS:
            self._dropping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_TAGS:
            self._dropping = max(0, self._dropping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """The text a reader sees in ``text``: tags and comments removed, entities unescaped, scripts and styles dropped.

    Block-level tags (``p``, ``br``, ``li``, ``td``, ...) become line breaks so that words either side stay apart.
    """
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


class TextCleaning:
    """Normalises Unicode, strips HTML and tidies whitespace in text columns."""

    name = "text_cleaning"

    class Options(BaseModel):
        """Options of ``text_cleaning``."""

        model_config = ConfigDict(extra="forbid")

        columns: list[str] | None = Field(None, description="columns to clean (default: every string column)")
        normalize: Literal["NFC", "NFKC", "NFD", "NFKD", "none"] = Field(
            "NFC", description="Unicode normal form; NFKC also folds compatibility forms (ligatures, full-width)"
        )
        strip_html: bool = Field(False, description="remove tags, drop script/style contents, unescape entities")
        remove_invisible: bool = Field(
            True, description="remove control characters (except tab and newline), zero-width spaces and BOMs"
        )
        collapse_whitespace: bool = Field(True, description="turn every run of whitespace into one space")
        keep_newlines: bool = Field(
            False, description="with collapse_whitespace: keep line breaks, at most one blank line in a row"
        )
        strip: bool = Field(True, description="remove leading and trailing whitespace")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.changed = 0

    @property
    def needs_fields(self) -> dict[str, tuple[str, ...]]:
        """The fields named in ``columns``; core checks them against the rows before any row runs."""
        return {"columns": tuple(self.options.columns or ())}

    def clean(self, text: str) -> str:
        """``text`` cleaned as the options say."""
        opts = self.options
        if opts.strip_html:
            text = strip_html(text)
        if opts.normalize != "none":
            text = unicodedata.normalize(opts.normalize, text)
        if opts.remove_invisible:
            text = _INVISIBLE.sub("", text)
        if opts.collapse_whitespace:
            if opts.keep_newlines:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
                text = "\n".join(_HORIZONTAL.sub(" ", line).strip() for line in text.split("\n"))
                text = _BLANK_LINES.sub("\n\n", text)
            else:
                text = _ANY_SPACE.sub(" ", text)
        if opts.strip:
            text = text.strip()
        return text

    @inline
    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Return the row with its chosen text columns cleaned (None when nothing changed)."""
        updates = {}
        for column in chosen_columns(data, self.options.columns, self.name):
            cleaned = self.clean(data[column])
            if cleaned != data[column]:
                updates[column] = cleaned
        if not updates:
            return None
        self.changed += 1
        return {**data, **updates}

    def summary(self) -> dict[str, Any]:
        """How many rows the cleaning changed."""
        return {"rows_changed": self.changed}
