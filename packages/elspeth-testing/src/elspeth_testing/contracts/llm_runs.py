"""The end-to-end contract of an LLM client: ``elspeth run`` in a subprocess, an experiment against the test server.

What a user meets: the settings file naming the client, the CLI, faults on the way, the sink's file.
"""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

if TYPE_CHECKING:
    from elspeth_testing.llm_server import LLMTestServer
    from elspeth_testing.plugin import ElspethCli, WriteSettings

__all__ = ["LLMRunContract"]

_SETTINGS = """\
name: client-e2e
datasource: {plugin: csv, options: {path: reviews.csv, id_column: id}}
llm:
  plugin: PLUGIN
  options: OPTIONS
allowed_endpoints: [ROOT]
retry: {max_attempts: 5, initial_delay_s: 0.01, max_delay_s: 0.2, timeout_s: 10}
prompts:
  system: 'Reply with "Score: N".'
  user: 'Review: {{ review }}'
concurrency: 8
orchestrator:
  plugin: experiment
  options:
    row_plugins: [score_extractor]
    aggregators: [score_stats]
sinks:
  - {plugin: jsonl, options: {path: results.jsonl}}
output_dir: out
"""

# the experiment orchestrator is in the workspace's `tests` session, absent when a client's
# distribution is tested alone beside core (nox isolated), where its other tests still run
_needs_experiment = pytest.mark.skipif(
    importlib.util.find_spec("elspeth_experiment") is None, reason="needs elspeth-orchestrator-experiment installed"
)


class LLMRunContract:
    """Inherited tests: a faulty experiment run answers every row once; bad options are exit 2; endpoints are checked.

    Set ``plugin`` (the client's name), ``answer_path`` (the path its calls arrive at),
    ``foreign_endpoint`` (an address that is not the test server) and ``retried_faults`` (faults
    the client retries, scripted on one row in this order), and override the ``fault_server``
    fixture (the test server, accepting the client's credentials) and ``plugin_options`` (the
    client's options pointing at it; the client must have a ``max_tokens`` option that refuses -5).
    """

    plugin: ClassVar[str]
    answer_path: ClassVar[str]
    foreign_endpoint: ClassVar[str]
    retried_faults: ClassVar[tuple[str, ...]] = ("429", "503", "drop")
    rows: ClassVar[int] = 30

    @pytest.fixture
    def fault_server(self) -> LLMTestServer:
        """The test server ``plugin_options`` point at."""
        pytest.fail(f"{type(self).__name__} must override the `fault_server` fixture", pytrace=False)

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        """The client's options, pointing at ``fault_server``."""
        pytest.fail(f"{type(self).__name__} must override the `plugin_options` fixture", pytrace=False)

    def endpoint(self, fault_server: LLMTestServer) -> str:
        """The client's ``endpoint`` as it names it in errors (default: the server's URL)."""
        return fault_server.url

    def settings(self, options: dict[str, Any], root: str) -> str:
        """The experiment's settings text with the client's ``options`` and ``allowed_endpoints: [root]``."""
        text = _SETTINGS.replace("PLUGIN", self.plugin).replace("OPTIONS", json.dumps(options))
        return text.replace("ROOT", root)

    @_needs_experiment
    def test_a_faulty_run_answers_every_row_exactly_once(
        self,
        fault_server: LLMTestServer,
        plugin_options: dict[str, Any],
        write_settings: WriteSettings,
        elspeth_cli: ElspethCli,
    ) -> None:
        """Random 429s and 500s, and a run of retried faults on one row: every row is answered once, scored."""
        fault_server.configure(rate_429=0.2, retry_after_s=0.05, rate_500=0.1, seed=5)
        fault_server.script(list(self.retried_faults), match="review 7")
        reviews = "id,review\n" + "".join(f"r{i},review {i} of the kettle\n" for i in range(self.rows))
        settings = write_settings(self.settings(plugin_options, fault_server.url), {"reviews.csv": reviews})

        done = elspeth_cli("run", str(settings))

        assert done.returncode == 0, done.stderr
        text = (settings.parent / "out" / "results.jsonl").read_text("utf-8")
        lines = [json.loads(line) for line in text.splitlines()]
        assert sorted(x["row_id"] for x in lines) == sorted(f"r{i}" for i in range(self.rows))
        assert {x["status"] for x in lines} == {"ok"}
        for line in lines:
            score = line["metrics"]["scores"]["default"]
            assert line["outputs"]["response"].startswith(f"Score: {score:.2f}")
        assert all(x["metrics"]["prompt_tokens"] > 0 for x in lines), lines[0]
        expected = {f"Review: review {i} of the kettle": 1 for i in range(self.rows)}
        assert fault_server.successes_per_prompt() == expected
        outcomes = [r.outcome for r in fault_server.requests() if r.prompt == "Review: review 7 of the kettle"]
        assert outcomes == [*self.retried_faults, "ok"]
        assert {r.path for r in fault_server.requests()} == {self.answer_path}

    def test_an_options_error_is_exit_2_naming_the_field(
        self,
        fault_server: LLMTestServer,
        plugin_options: dict[str, Any],
        write_settings: WriteSettings,
        elspeth_cli: ElspethCli,
    ) -> None:
        """``max_tokens: -5`` stops ``elspeth run`` with exit 2 and the field's name, before any call."""
        text = self.settings({**plugin_options, "max_tokens": -5}, fault_server.url)
        settings = write_settings(text, {"reviews.csv": "id,review\nr1,fine\n"})

        done = elspeth_cli("run", str(settings))

        assert done.returncode == 2, done.stderr
        assert "max_tokens" in done.stderr
        assert "greater than 0" in done.stderr, done.stderr
        assert fault_server.requests() == []

    @_needs_experiment
    def test_an_endpoint_outside_allowed_endpoints_is_refused_before_any_call(
        self,
        fault_server: LLMTestServer,
        plugin_options: dict[str, Any],
        write_settings: WriteSettings,
        elspeth_cli: ElspethCli,
    ) -> None:
        """The client's endpoint is checked against ``allowed_endpoints`` before the first call."""
        settings = write_settings(
            self.settings(plugin_options, self.foreign_endpoint), {"reviews.csv": "id,review\nr1,fine\n"}
        )

        done = elspeth_cli("run", str(settings))

        assert done.returncode != 0
        assert f"LLM endpoint {self.endpoint(fault_server)} is not in allowed_endpoints" in done.stderr
        assert fault_server.requests() == []
