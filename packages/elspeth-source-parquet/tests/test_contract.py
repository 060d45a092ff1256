"""The datasource contract every Elspeth datasource passes, over a file of several row groups."""

from __future__ import annotations

from typing import Any

import pytest

from elspeth import PluginContext
from elspeth_parquet.datasource import ParquetDataSource
from elspeth_testing import DataSourceContract


class TestParquetDataSourceContract(DataSourceContract):
    plugin_class = ParquetDataSource

    @pytest.fixture
    def plugin_options(self, plugin_context: PluginContext, write: Any) -> dict[str, Any]:
        write(plugin_context.base_dir / "in.parquet", 12, row_group_size=5)
        return {"path": "in.parquet", "columns": ["id", "email", "age"], "id_column": "id"}


class TestParquetWithRowNumbersContract(DataSourceContract):
    plugin_class = ParquetDataSource

    @pytest.fixture
    def plugin_options(self, plugin_context: PluginContext, write: Any) -> dict[str, Any]:
        write(plugin_context.base_dir / "in.parquet", 7, row_group_size=3)
        return {"path": "in.parquet", "batch_rows": 2}
