"""Testing tools for Elspeth plugin authors.

Installing ``elspeth-testing`` adds a pytest plugin (see :mod:`elspeth_testing.plugin`) with the
fixtures ``make_registry``, ``plugin_context``, ``write_settings``, ``run_settings`` and
``elspeth_cli``. A plugin's own test class subclasses the contract of its domain and inherits its
tests::

    from elspeth_testing import SinkContract

    class TestExcelSink(SinkContract):
        plugin_class = ExcelSink
"""

import pytest

__version__ = "0.1.0"

pytest.register_assert_rewrite("elspeth_testing.contracts")

from elspeth_testing._cli import CliResult, run_cli  # noqa: E402
from elspeth_testing._own import distribution_fixtures  # noqa: E402
from elspeth_testing._registry import build_registry, plugin_module  # noqa: E402
from elspeth_testing._samples import UNICODE_TEXT, EchoClient, sample_request, sample_run_result  # noqa: E402
from elspeth_testing._settings import write_settings_files  # noqa: E402
from elspeth_testing.contracts import (  # noqa: E402
    COMMON_FAULTS,
    DataSourceContract,
    LLMClientContract,
    LLMFaultContract,
    LLMRunContract,
    MiddlewareContract,
    PluginContract,
    SinkContract,
    generate_once,
)
from elspeth_testing.contracts._base import run_async  # noqa: E402
from elspeth_testing.contracts.datasource import read_table  # noqa: E402
from elspeth_testing.rows import RowsOrchestrator  # noqa: E402

__all__ = [
    "COMMON_FAULTS",
    "CliResult",
    "DataSourceContract",
    "EchoClient",
    "LLMClientContract",
    "LLMFaultContract",
    "LLMRunContract",
    "MiddlewareContract",
    "PluginContract",
    "RowsOrchestrator",
    "SinkContract",
    "UNICODE_TEXT",
    "build_registry",
    "distribution_fixtures",
    "generate_once",
    "plugin_module",
    "read_table",
    "run_async",
    "run_cli",
    "sample_request",
    "sample_run_result",
    "write_settings_files",
]
