"""`allowed_endpoints`: entries checked where written, endpoints compared after normalising, variants refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from elspeth import ConfigError, LLMRequest, LLMResponse, RunResult, hookimpl
from elspeth.config import load_settings, load_settings_text
from elspeth.config._yaml import Checker, SourceMap
from elspeth.endpoints import declared_endpoints, endpoint_allowed
from elspeth.engine import prepare
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, WriteSettings


class Client:
    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint


def allowed(endpoint: str | None, entries: list[str] | None) -> tuple[bool, list[str]]:
    checker = Checker(SourceMap("settings.yaml", {}))
    ok = endpoint_allowed(Client(endpoint), entries, ("llm",), checker)
    return ok, [p.message for p in checker.problems]


@pytest.mark.parametrize(
    ("endpoint", "entry"),
    [
        ("https://api.example.com/v1", "https://api.example.com"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("HTTPS://API.Example.COM/v1", "https://api.example.com/v1/"),
        ("https://api.example.com:443/v1", "https://api.example.com/v1"),  # the default port, spelt out
        ("http://127.0.0.1:80/v1", "http://127.0.0.1"),
        ("https://api.example.com./v1", "https://api.example.com"),  # a fully qualified name
        ("https://user:pw@api.example.com/v1", "https://api.example.com"),  # user-info is not the host
        ("https://api.example.com/v1/deployments/x", "https://api.example.com/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000"),
    ],
)
def test_equivalent_spellings_are_allowed(endpoint: str, entry: str) -> None:
    assert allowed(endpoint, [entry]) == (True, [])


@pytest.mark.parametrize(
    ("endpoint", "entry"),
    [
        ("http://127.0.0.1.evil.example/v1", "http://127.0.0.1"),  # a host that only starts like the allowed one
        ("https://api.example.com.evil.example", "https://api.example.com"),
        ("https://api.example.com@evil.example/v1", "https://api.example.com"),  # the host is evil.example
        ("https://api.example.com/v1beta", "https://api.example.com/v1"),  # a path is allowed at a / boundary
        ("https://api.example.com/v1/../admin", "https://api.example.com/v1"),  # dot segments resolved first
        ("https://api.example.com/v1/%2e%2e/admin", "https://api.example.com/v1"),
        ("http://api.example.com/v1", "https://api.example.com/v1"),  # another scheme
        ("https://api.example.com:8443/v1", "https://api.example.com/v1"),  # another port
        ("http://127.0.0.1:8001", "http://127.0.0.1:8000"),
    ],
)
def test_lookalikes_are_refused_naming_the_endpoint(endpoint: str, entry: str) -> None:
    ok, problems = allowed(endpoint, [entry])
    assert not ok
    assert problems == [f"LLM endpoint {endpoint} is not in allowed_endpoints ({entry})"]


def test_no_list_or_no_endpoint_allows_and_a_broken_endpoint_is_reported_not_raised() -> None:
    assert allowed("https://anything.example", None) == (True, [])
    assert allowed(None, ["https://api.example.com"]) == (True, [])
    ok, problems = allowed("http://127.0.0.1:99999/v1", ["http://127.0.0.1"])
    assert not ok
    assert "not a URL that can be checked" in problems[0]
    assert "out of range" in problems[0]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://127.0.0.1:http", "is not a valid URL"),
        ("127.0.0.1:8000", "needs an http:// or https:// scheme"),
        ("ftp://files.example", "needs an http:// or https:// scheme"),
        ("https://", "has no host"),
        ("https://me:pw@api.example.com", "holds user-info"),
        ("https://api.example.com/v1?key=1", "has a query or fragment"),
    ],
)
def test_a_bad_entry_is_reported_at_its_index_and_line(entry: str, message: str) -> None:
    text = f"orchestrator: rows\ndatasource: csv\nallowed_endpoints:\n  - https://fine.example\n  - '{entry}'\n"
    with pytest.raises(ConfigError) as caught:
        load_settings_text(text, base_dir=Path("."))
    report = str(caught.value)
    assert "allowed_endpoints[1]" in report
    assert "settings.yaml:5" in report
    assert message in report
    assert "unexpected" not in report


class UrlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str


class UrlClient:
    """A client that would call ``base_url``."""

    name = "url_client"
    Options = UrlOptions

    def __init__(self, options: UrlOptions) -> None:
        self.options = options
        self.endpoint = options.base_url

    async def generate(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("no call may be made: the checks come first")


class VariantOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variants: list[dict[str, Any]]


class VariantOrchestrator:
    """Builds one client per variant through ctx.build_llm, as a suite orchestrator does."""

    name = "variants"
    Options = VariantOptions

    def __init__(self, options: VariantOptions) -> None:
        self.options = options

    def check(self, columns: Any, ctx: Any) -> None:
        checker = ctx.checker()
        for i, override in enumerate(self.options.variants):
            ctx.build_llm(None, override, ("orchestrator", "options", "variants", i), checker)
        checker.raise_if_any()

    def run(self, table: Any, ctx: Any) -> RunResult:
        raise AssertionError("the checks must stop the run")


@hookimpl
def register_llm_clients(register: Any) -> None:
    register(UrlClient)


@hookimpl
def register_orchestrators(register: Any) -> None:
    register(VariantOrchestrator)


SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: url_client, options: {base_url: 'https://api.example.com/v1'}}
allowed_endpoints: [https://api.example.com/v1]
orchestrator:
  plugin: variants
  options:
    variants:
      - {base_url: 'https://api.example.com/v1/'}
      - {base_url: 'https://api.example.com.evil.example/v1'}
"""


def test_a_suite_variants_client_outside_the_list_is_refused_at_its_place(
    write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    registry = make_registry(plugin_module("allowlist_plugins", register_llm_clients, register_orchestrators))
    path = write_settings(SETTINGS, {"data.csv": "id,q\n1,hi\n"})
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry))
    report = str(caught.value)
    assert "LLM endpoint https://api.example.com.evil.example/v1 is not in allowed_endpoints" in report
    assert "orchestrator.options.variants[1]" in report
    assert "settings.yaml:9" in report
    assert "variants[0]" not in report, "the first variant's endpoint is allowed"


class SearchBackend:
    """A retrieval-like utility that would call a search service: it declares it in ``endpoints``."""

    name = "search_backend"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        url: str

    def __init__(self, options: Any) -> None:
        self.endpoints = (options.url,)
        self.adds_fields = ("context",)

    def enrich(self, data: Any) -> Any:
        raise AssertionError("no row may be enriched: the checks come first")


@hookimpl
def register_utilities(register: Any) -> None:
    register(SearchBackend)


UTILITY_SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
orchestrator: rows
allowed_endpoints: [http://127.0.0.1:8000/v1]
utilities:
  - plugin: search_backend
    options: {url: 'URL'}
"""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8000/v1/search", None),
        (
            "http://127.0.0.1:8001/search",
            "utility 'search_backend' endpoint http://127.0.0.1:8001/search is not in allowed_endpoints "
            "(http://127.0.0.1:8000/v1)",
        ),
        ("ftp://x", "utility 'search_backend' endpoint 'ftp://x' is not a URL that can be checked"),
    ],
)
def test_a_utility_declaring_a_service_is_checked_at_its_line(
    url: str, message: str | None, write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    registry = make_registry(plugin_module("utility_plugins", register_utilities))
    path = write_settings(UTILITY_SETTINGS.replace("URL", url), {"data.csv": "id,q\n1,hi\n"})
    if message is None:
        asyncio.run(prepare(load_settings(path), registry))
        return
    with pytest.raises(ConfigError) as caught:
        asyncio.run(prepare(load_settings(path), registry))
    (problem,) = caught.value.problems
    assert problem.path == "utilities[0]"
    assert problem.line == 5
    assert message in problem.message


def test_declared_endpoints_prefers_endpoints_then_endpoint() -> None:
    class Many:
        endpoints = ("http://a", "", "http://b")
        endpoint = "http://ignored"

    assert declared_endpoints(Many()) == ["http://a", "http://b"]
    assert declared_endpoints(Client("http://one")) == ["http://one"]
    assert declared_endpoints(Client(None)) == []
    assert declared_endpoints(object()) == []


def test_the_retrieval_utility_declares_no_service() -> None:
    retrieval = pytest.importorskip("elspeth_retrieval.retrieval")
    assert retrieval.Retrieval.endpoints == ()
