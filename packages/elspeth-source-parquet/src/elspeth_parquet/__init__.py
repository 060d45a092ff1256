"""Elspeth's ``parquet`` datasource: rows from a Parquet file, read in bounded memory.

Registered through the entry point ``parquet = "elspeth_parquet.plugin"``; settings name it as
``datasource: {plugin: parquet, options: {path: data.parquet}}``. On a cluster executor the file is
split by row groups and each partition is read where it is processed (README.md).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
