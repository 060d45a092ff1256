"""The contract every datasource passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from elspeth import PluginContext, Row, Table, invoke, iterate_rows
from elspeth_testing.contracts._base import PluginContract, run_async

__all__ = ["DataSourceContract"]


async def read_table(source: Any, ctx: PluginContext) -> tuple[Table, list[Row]]:
    """Load ``source`` and read every row, the way the runner does (sync or async, in either case)."""
    table = await invoke(source.load, ctx)
    rows = [row async for row in iterate_rows(table.rows)]
    return table, rows


class DataSourceContract(PluginContract):
    """Inherited tests for a datasource.

    Set ``plugin_class`` and override ``plugin_options`` to describe a source of at least two rows;
    the fixture may write input files into ``plugin_context.base_dir`` (the test's ``tmp_path``),
    against which relative paths resolve.

    Example::

        class TestParquetSource(DataSourceContract):
            plugin_class = ParquetDataSource  # elspeth_parquet.datasource

            @pytest.fixture
            def plugin_options(self, plugin_context):
                pq.write_table(pa.table({"id": ["a", "b"]}), plugin_context.base_dir / "in.parquet")
                return {"path": "in.parquet"}

    """

    domain: ClassVar[str] = "datasource"
    hook: ClassVar[str] = "register_datasources"

    def test_load_gives_a_table_with_string_columns(self, plugin: Any, plugin_context: PluginContext) -> None:
        """``load`` returns a Table whose columns are distinct strings."""
        table, _ = run_async(read_table(plugin, plugin_context))
        assert isinstance(table, Table), f"load() must return elspeth.Table, got {type(table).__name__}"
        assert table.columns, "the table has no columns"
        assert all(isinstance(c, str) for c in table.columns), f"column names must be str: {table.columns!r}"
        assert len(set(table.columns)) == len(table.columns), f"duplicate column names: {table.columns!r}"

    def test_rows_are_rows_whose_keys_are_the_columns(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Every row is a Row whose data keys are the table's columns, in order."""
        table, rows = run_async(read_table(plugin, plugin_context))
        assert len(rows) >= 2, "the contract needs a source of at least two rows: adjust `plugin_options`"
        for row in rows:
            assert isinstance(row, Row), f"rows must be elspeth.Row, got {type(row).__name__}"
            assert list(row.data) == list(table.columns), (
                f"row {row.id!r} has keys {list(row.data)}, but the table's columns are {table.columns}"
            )

    def test_row_ids_are_unique_strings_and_indexes_count_up(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Row ids are unique non-empty strings; indexes are 0, 1, 2, ..."""
        _, rows = run_async(read_table(plugin, plugin_context))
        ids = [row.id for row in rows]
        assert all(isinstance(i, str) and i for i in ids), f"row ids must be non-empty str: {ids!r}"
        assert len(set(ids)) == len(ids), f"row ids repeat: {ids!r}"
        assert [row.index for row in rows] == list(range(len(rows))), "Row.index must be the 0-based position"

    def test_reading_twice_gives_the_same_rows(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Loading again gives the same ids and values (resume relies on it)."""
        _, first = run_async(read_table(plugin, plugin_context))
        _, second = run_async(read_table(plugin, plugin_context))
        assert [(r.id, dict(r.data)) for r in first] == [(r.id, dict(r.data)) for r in second]

    def test_every_row_becomes_a_record_in_a_run(
        self, plugin: Any, plugin_options: dict[str, Any], plugin_context: PluginContext
    ) -> None:
        """In a real run, every row comes out as a record, in order."""
        from elspeth import load_settings_text, run_settings

        cls = self._class()
        _, rows = run_async(read_table(plugin, plugin_context))
        registry = self.registry()
        text = f"datasource: {{plugin: {cls.name}, options: {json.dumps(plugin_options, default=str)}}}\n"
        text += "orchestrator: rows\n"
        loaded = load_settings_text(text, base_dir=Path(plugin_context.base_dir))
        result = run_settings(loaded, registry)
        assert [r.row_id for r in result.records] == [r.id for r in rows]
        assert result.failures == []
