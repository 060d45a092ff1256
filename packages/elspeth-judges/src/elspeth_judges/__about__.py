"""The version of elspeth-judges, written only here; hatchling and ``tools/versions.py`` read it."""

__version__ = "0.1.0"
