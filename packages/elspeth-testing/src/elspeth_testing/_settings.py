"""Writing a settings file and its data files into a test's folder."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_settings_files"]


def write_settings_files(
    folder: Path, text: str, files: Mapping[str, str | bytes] | None = None, *, name: str = "settings.yaml"
) -> Path:
    """Write ``text`` (dedented) as ``folder/name`` and each of ``files`` beside it; return the settings path.

    Args:
        folder: where to write (a test's ``tmp_path``).
        text: the settings YAML; common leading indentation is removed, so it can be written inline.
        files: relative path to content (str is written as UTF-8); folders are created.
        name: the settings file's name.

    """
    folder.mkdir(parents=True, exist_ok=True)
    for relative, content in (files or {}).items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path
