"""Contract test suites, one per plugin domain: subclass yours and inherit its tests."""

from elspeth_testing.contracts._base import PluginContract
from elspeth_testing.contracts.datasource import DataSourceContract
from elspeth_testing.contracts.llm_client import LLMClientContract
from elspeth_testing.contracts.llm_faults import COMMON_FAULTS, LLMFaultContract, generate_once
from elspeth_testing.contracts.llm_runs import LLMRunContract
from elspeth_testing.contracts.middleware import MiddlewareContract
from elspeth_testing.contracts.sink import SinkContract

__all__ = [
    "COMMON_FAULTS",
    "DataSourceContract",
    "LLMClientContract",
    "LLMFaultContract",
    "LLMRunContract",
    "MiddlewareContract",
    "PluginContract",
    "SinkContract",
    "generate_once",
]
