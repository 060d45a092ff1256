"""Every registration domain in a real run: middleware, controls, processors and utilities take effect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from elspeth import LLMRequest, LLMResponse, PluginContext, hookimpl
from elspeth_testing import plugin_module
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

EVENTS: list[str] = []


class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shout:
    """Upper-cases the text column; refuses rows whose text is 'bad'."""

    name = "shout"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        pass

    def process(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        if data["text"] == "bad":
            raise ValueError("cannot shout 'bad'")
        return {**data, "text": data["text"].upper()}


class Suffix:
    """Adds a suffix to every prompt and tags every response."""

    name = "suffix"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str

    def __init__(self, options: Options) -> None:
        self.text = options.text

    def before_request(self, request: LLMRequest) -> LLMRequest:
        request.user += self.text
        return request

    async def after_response(self, request: LLMRequest, response: LLMResponse) -> LLMResponse:
        response.metrics["suffixed"] = True
        return response


class CountingLimiter:
    """Lets every request through and counts them."""

    name = "counting"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.count = 0

    def acquire(self, request: LLMRequest) -> None:
        self.count += 1
        EVENTS.append(f"acquire {request.metadata['row_id']}")


class FlatPrice:
    """Charges 0.25 a call."""

    name = "flat"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.total = 0.0

    def record(self, request: LLMRequest, response: LLMResponse) -> float:
        self.total += 0.25
        return 0.25

    def summary(self) -> dict[str, float]:
        return {"total": self.total}


class Notebook:
    """A utility that is opened before the rows and closed after them."""

    name = "notebook"
    Options = Opts

    def __init__(self, options: Opts) -> None:
        self.opened_in: str | None = None

    def open(self, ctx: PluginContext) -> None:
        EVENTS.append("open")
        self.opened_in = ctx.run_id

    def close(self) -> None:
        EVENTS.append("close")

    def summary(self) -> dict[str, Any]:
        return {"opened": self.opened_in is not None}


@hookimpl
def register_processors(register: Any) -> None:
    register(Shout)


@hookimpl
def register_llm_middleware(register: Any) -> None:
    register(Suffix)


@hookimpl
def register_controls(register: Any) -> None:
    register(CountingLimiter, kind="rate_limiter")
    register(FlatPrice, kind="cost_tracker")


@hookimpl
def register_utilities(register: Any) -> None:
    register(Notebook)


PLUGINS = plugin_module(
    "run_plugins", register_processors, register_llm_middleware, register_controls, register_utilities
)

SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: static, options: {content: "noted"}}
prompts: {user: "{{ text }}"}
orchestrator: rows
processors: [shout]
middleware: [{plugin: suffix, options: {text: " please"}}]
rate_limiter: counting
cost_tracker: flat
utilities: [notebook]
concurrency: 1
"""


def test_every_domain_takes_part_in_a_run(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    EVENTS.clear()
    seen: list[str] = []

    class Recorder:
        """Remembers the prompts it was sent."""

        name = "recorder"
        Options = Opts

        def __init__(self, options: Opts) -> None:
            pass

        async def generate(self, request: LLMRequest) -> LLMResponse:
            seen.append(request.user)
            return LLMResponse(content="noted")

    @hookimpl
    def register_llm_clients(register: Any) -> None:
        register(Recorder)

    registry = make_registry(PLUGINS, plugin_module("recorder", register_llm_clients))
    path = write_settings(
        SETTINGS.replace('{plugin: static, options: {content: "noted"}}', "recorder"),
        {"data.csv": "id,text\na,hello\nb,bad\nc,bye\n"},
    )
    result = run_settings(path, registry)

    assert seen == ["HELLO please", "BYE please"]  # processor, then middleware, before the client
    assert [r.metrics["suffixed"] for r in result.records] == [True, True]
    assert [r.metrics["cost"] for r in result.records] == [0.25, 0.25]
    (failure,) = result.failures
    assert (failure.row_id, failure.stage) == ("b", "processor")
    assert failure.error == "ValueError: cannot shout 'bad'"
    assert EVENTS == ["open", "acquire a", "acquire c", "close"]
    assert result.metadata.cost == result.metadata.to_dict()["cost"] == {"total": 0.5}
    assert result.metadata.summaries["utility"] == {"notebook": {"opened": True}}
    assert result.metadata.to_dict()["utility"] == {"notebook": {"opened": True}}
    used = {(p["domain"], p["name"]) for p in result.metadata.plugins}
    assert {("processor", "shout"), ("llm_middleware", "suffix"), ("rate_limiter", "counting")} <= used
    assert {("cost_tracker", "flat"), ("utility", "notebook")} <= used
