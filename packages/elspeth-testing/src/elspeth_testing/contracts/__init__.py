"""Contract test suites, one per plugin domain: subclass yours and inherit its tests."""

from elspeth_testing.contracts._base import PluginContract
from elspeth_testing.contracts.datasource import DataSourceContract
from elspeth_testing.contracts.llm_client import LLMClientContract
from elspeth_testing.contracts.middleware import MiddlewareContract
from elspeth_testing.contracts.sink import SinkContract

__all__ = ["DataSourceContract", "LLMClientContract", "MiddlewareContract", "PluginContract", "SinkContract"]
