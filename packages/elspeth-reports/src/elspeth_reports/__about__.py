"""The version of elspeth-reports, written only here; hatchling and ``tools/versions.py`` read it."""

__version__ = "0.1.0"
