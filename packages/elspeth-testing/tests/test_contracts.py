"""The contract suites, run by pytester as a plugin author runs them: good plugins pass, wrong ones fail."""

from __future__ import annotations

import pytest

from elspeth_testing import DataSourceContract, MiddlewareContract, SinkContract

pytest_plugins = ["pytester"]

HEADER = """
from __future__ import annotations
import os, pytest
from pydantic import BaseModel, ConfigDict
from elspeth import Artifact, LLMRequest, LLMResponse, Row, Table, Usage
from elspeth_testing import DataSourceContract, LLMClientContract, MiddlewareContract, SinkContract

class Opts(BaseModel):
    model_config = ConfigDict(extra="forbid")
"""


def inherited(contract: type) -> set[str]:
    return {name for name in dir(contract) if name.startswith("test_")}


def run(pytester: pytest.Pytester, body: str) -> tuple[set[str], set[str], str]:
    """Run a test module; return the names of the tests that passed and failed, and the output."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_plugin=HEADER + body)
    reprec = pytester.inline_run("-q", "-p", "no:cacheprovider")
    passed, skipped, failed = reprec.listoutcomes()
    assert not skipped
    text = "\n".join(str(rep.longrepr) for rep in failed)
    return {r.nodeid.split("::")[-1] for r in passed}, {r.nodeid.split("::")[-1] for r in failed}, text


def test_a_good_sink_inherits_and_passes_every_sink_test(pytester: pytest.Pytester) -> None:
    passed, failed, _ = run(
        pytester,
        """
from elspeth.builtins.sinks import JsonlSink

class TestMySink(SinkContract):
    plugin_class = JsonlSink
""",
    )
    assert failed == set()
    assert passed == inherited(SinkContract)
    assert len(passed) >= 9


def test_a_sink_that_appends_and_leaves_temp_files_fails_those_tests(pytester: pytest.Pytester) -> None:
    _, failed, text = run(
        pytester,
        """
class AppendingSink:
    \"\"\"Appends to a file and leaves a temporary file behind.\"\"\"
    name = "appender"
    Options = Opts
    def __init__(self, options): pass
    def write(self, result, ctx):
        path = ctx.output_path("out.txt")
        ctx.output_path(".out.txt.tmp").write_text("half", encoding="utf-8")
        with path.open("a", encoding="utf-8") as handle:
            for r in result.records:
                handle.write(r.row_id + "\\n")
        return [Artifact(path, "text/plain", self.name)]

class TestAppendingSink(SinkContract):
    plugin_class = AppendingSink
""",
    )
    assert failed == {
        "test_leaves_no_files_it_does_not_report",
        "test_second_write_replaces_the_first",
        "test_written_content_keeps_every_record_and_unicode",  # it writes ids only, losing the text
    }
    assert "files left behind that write() did not report" in text
    assert "the second write kept rows of the first" in text


def test_a_sink_reporting_a_file_it_never_wrote_fails(pytester: pytest.Pytester) -> None:
    _, failed, text = run(
        pytester,
        """
class LyingSink:
    \"\"\"Says it wrote a file.\"\"\"
    name = "liar"
    Options = Opts
    def __init__(self, options): pass
    async def write(self, result, ctx):
        return [Artifact(ctx.output_path("ghost.csv"), "text/csv", "liar")]

class TestLyingSink(SinkContract):
    plugin_class = LyingSink
""",
    )
    assert "test_writes_a_result_to_artifacts_that_exist" in failed
    assert "ghost.csv was returned as written but does not exist" in text


@pytest.mark.parametrize("returns", ["None", "[]"])
def test_a_sink_whose_write_does_nothing_fails(pytester: pytest.Pytester, returns: str) -> None:
    _, failed, text = run(
        pytester,
        f"""
class SilentSink:
    \"\"\"Writes nothing at all.\"\"\"
    name = "silent"
    Options = Opts
    def __init__(self, options): pass
    def write(self, result, ctx):
        return {returns}

class TestSilentSink(SinkContract):
    plugin_class = SilentSink
""",
    )
    assert failed == {"test_writes_a_result_to_artifacts_that_exist", "test_writes_the_result_of_a_real_run"}
    assert "write() returned no artifacts for a result with records" in text
    assert "the run lists nothing that sink 'silent' wrote" in text


def test_a_sink_returning_an_empty_file_fails(pytester: pytest.Pytester) -> None:
    _, failed, text = run(
        pytester,
        """
class EmptySink:
    \"\"\"Writes an empty file.\"\"\"
    name = "empty"
    Options = Opts
    def __init__(self, options): pass
    def write(self, result, ctx):
        path = ctx.output_path("out.txt")
        path.write_text("", encoding="utf-8")
        return [Artifact(path, "text/plain", self.name)]

class TestEmptySink(SinkContract):
    plugin_class = EmptySink
    writes_records = False
""",
    )
    assert failed == {"test_writes_a_result_to_artifacts_that_exist"}
    assert "out.txt is empty" in text


UPLOADING_SINK = """
from pathlib import Path

STORE: dict[str, str] = {}

class UploadSink:
    \"\"\"Uploads the results to an in-memory store, listed by URL.\"\"\"
    name = "upload"
    Options = Opts
    def __init__(self, options): pass
    def write(self, result, ctx):
        url = f"memory://bucket/{ctx.run_id}/results.txt"
        STORE[url] = "".join(f"{r.row_id}\\n" for r in result.records)
        return [Artifact(Path("bucket", ctx.run_id, "results.txt"), "text/plain", self.name, url=url)]
"""


def test_an_uploading_sink_lists_its_artifact_by_url_and_passes(pytester: pytest.Pytester) -> None:
    passed, failed, _ = run(
        pytester,
        UPLOADING_SINK
        + """
class TestUploadSink(SinkContract):
    plugin_class = UploadSink
    def remote_artifact_exists(self, url):
        return url in STORE

def test_the_run_lists_the_upload_by_url(write_settings, run_settings, make_registry):
    import elspeth_testing
    from elspeth import hookimpl
    @hookimpl
    def register_sinks(register):
        register(UploadSink)
    path = write_settings(
        "datasource: {plugin: csv, options: {path: in.csv}}\\norchestrator: rows\\nsinks: [upload]\\n",
        {"in.csv": "id,text\\n1,hello\\n"},
    )
    result = run_settings(path, make_registry(elspeth_testing.plugin_module("uploads", register_sinks)))
    (listed,) = result.metadata.to_dict()["artifacts"]
    assert listed["path"] == f"memory://bucket/{result.metadata.run_id}/results.txt"
""",
    )
    assert failed == set()
    assert passed == inherited(SinkContract) | {"test_the_run_lists_the_upload_by_url"}


def test_an_uploading_sink_that_says_nothing_of_where_it_wrote_fails_naming_the_override(
    pytester: pytest.Pytester,
) -> None:
    _, failed, text = run(
        pytester, UPLOADING_SINK + "\nclass TestUploadSink(SinkContract):\n    plugin_class = UploadSink\n"
    )
    assert "test_writes_a_result_to_artifacts_that_exist" in failed
    assert "override remote_artifact_exists to check it" in text


def test_a_good_datasource_passes_and_a_wrong_one_fails(pytester: pytest.Pytester) -> None:
    passed, failed, text = run(
        pytester,
        """
class ListSource:
    \"\"\"Rows from a list in the options.\"\"\"
    name = "listed"
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        values: list[str]
        wrong: bool = False
    def __init__(self, options):
        self.options = options
    async def load(self, ctx):
        async def rows():
            for i, value in enumerate(self.options.values):
                data = {"value": value, "extra": 1} if self.options.wrong else {"value": value}
                yield Row("same" if self.options.wrong else str(i), data, i)
        return Table(["value"], rows())

class TestGood(DataSourceContract):
    plugin_class = ListSource

    @pytest.fixture
    def plugin_options(self):
        return {"values": ["a", "b"]}

class TestWrong(TestGood):
    @pytest.fixture
    def plugin_options(self):
        return {"values": ["a", "b"], "wrong": True}
""",
    )
    assert {name for name in passed} >= inherited(DataSourceContract)  # TestGood passes everything
    assert failed == {
        "test_rows_are_rows_whose_keys_are_the_columns",
        "test_row_ids_are_unique_strings_and_indexes_count_up",
    }
    assert "row ids repeat" in text
    assert "but the table's columns are ['value']" in text


def test_a_sync_llm_client_passes_and_a_sloppy_one_fails(pytester: pytest.Pytester) -> None:
    _, failed, text = run(
        pytester,
        """
class SyncClient:
    \"\"\"Answers synchronously, as a blocking SDK would.\"\"\"
    name = "syncy"
    Options = Opts
    def __init__(self, options): pass
    def generate(self, request):
        return LLMResponse(content="yes", usage=Usage(3, 1))

class Sloppy:
    \"\"\"Returns bare text, has negative usage and scribbles on the request.\"\"\"
    name = "sloppy"
    class Options(BaseModel):
        mode: str = "text"
    def __init__(self, options):
        self.mode = options.mode
    async def generate(self, request):
        request.metadata["seen"] = True
        if self.mode == "text":
            return "yes"
        return LLMResponse(content="yes", usage=Usage(-1, 1))

class TestSync(LLMClientContract):
    plugin_class = SyncClient

class TestSloppy(LLMClientContract):
    plugin_class = Sloppy

class TestSloppyUsage(LLMClientContract):
    plugin_class = Sloppy

    @pytest.fixture
    def plugin_options(self):
        return {"mode": "usage"}
""",
    )
    assert not any(name for name in failed if "Sync" in name)
    assert failed == {
        "test_options_refuse_unknown_keys",
        "test_returns_an_llm_response",
        "test_does_not_change_the_request",
        "test_works_in_the_llm_pipeline",
        "test_many_concurrent_calls_all_answer",
        "test_answers_every_row_of_a_real_run",
    }
    assert "generate() must return elspeth.LLMResponse, got 'yes'" in text
    assert "usage.prompt_tokens must not be negative, got -1" in text
    assert "generate() changed its request" in text
    assert 'set `model_config = ConfigDict(extra="forbid")`' in text


def test_middleware_that_drops_metadata_fails(pytester: pytest.Pytester) -> None:
    passed, failed, text = run(
        pytester,
        """
class Tagger:
    \"\"\"Adds a tag to every request and a metric to every response.\"\"\"
    name = "tagger"
    Options = Opts
    def __init__(self, options): pass
    def before_request(self, request):
        request.metadata["tag"] = "x"
        return request
    async def after_response(self, request, response):
        response.metrics["tagged"] = True
        return response

class Forgetful:
    \"\"\"Builds a fresh request and loses the run's metadata.\"\"\"
    name = "forgetful"
    Options = Opts
    def __init__(self, options): pass
    def before_request(self, request):
        return LLMRequest(system=request.system, user=request.user)

class TestTagger(MiddlewareContract):
    plugin_class = Tagger

class TestForgetful(MiddlewareContract):
    plugin_class = Forgetful
""",
    )
    assert passed >= inherited(MiddlewareContract)
    assert failed == {
        "test_before_request_returns_a_request_keeping_metadata",
        "test_works_in_the_llm_pipeline",
        "test_many_concurrent_requests",
    }
    assert "before_request lost or changed metadata['run_id']" in text


def test_middleware_whose_outcome_hooks_break_on_a_refusal_fails(pytester: pytest.Pytester) -> None:
    passed, failed, text = run(
        pytester,
        """
class Listener:
    \"\"\"Hears every outcome the pipeline reports.\"\"\"
    name = "listener"
    Options = Opts
    def __init__(self, options): self.heard = []
    def before_request(self, request):
        return request
    def on_success(self, request, response): self.heard.append("success")
    def on_error(self, request, failed): self.heard.append(len(failed.attempts))
    async def on_refused(self, request, error, response): self.heard.append(type(error).__name__)

class Stale:
    \"\"\"Written for an older pipeline: its on_refused takes two arguments and reads a response it may not get.\"\"\"
    name = "stale"
    Options = Opts
    def __init__(self, options): pass
    def before_request(self, request):
        return request
    def on_refused(self, request, error):
        return error.response.content

class TestListener(MiddlewareContract):
    plugin_class = Listener

class TestStale(MiddlewareContract):
    plugin_class = Stale
""",
    )
    assert passed >= inherited(MiddlewareContract)  # the listener passes every test
    assert failed == {
        "test_outcome_hooks_take_what_the_pipeline_sends",
        "test_a_refusal_by_other_middleware_passes_through_unchanged",
    }
    assert "TypeError" in text


def test_a_subclass_without_plugin_class_is_told_what_to_set(pytester: pytest.Pytester) -> None:
    passed, failed, text = run(pytester, "class TestNothing(SinkContract):\n    pass\n")
    assert failed == inherited(SinkContract)
    assert passed == set()
    assert "TestNothing must set `plugin_class = YourPlugin`" in text


def test_a_plugin_class_without_a_docstring_or_good_name_fails_the_shape_test(pytester: pytest.Pytester) -> None:
    _, failed, text = run(
        pytester,
        """
class Shouty:
    name = "Shouty"
    Options = Opts
    def __init__(self, options): pass
    def generate(self, request):
        return LLMResponse(content="HI")

class TestShouty(LLMClientContract):
    plugin_class = Shouty
""",
    )
    assert failed == {
        "test_class_has_name_options_and_description",
        "test_registers_through_discovery",
        "test_answers_every_row_of_a_real_run",
    }
    assert "plugin name 'Shouty' must be lowercase" in text
