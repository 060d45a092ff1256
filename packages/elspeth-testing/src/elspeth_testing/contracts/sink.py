"""The contract every sink passes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from elspeth import Artifact, PluginContext, RunResult, invoke
from elspeth_testing._samples import UNICODE_TEXT, sample_run_result
from elspeth_testing.contracts._base import PluginContract, run_async

__all__ = ["SinkContract"]

_TEXT_TYPES = ("application/json", "application/jsonl", "application/x-ndjson", "application/xml")


def _files(folder: Path) -> set[Path]:
    return {p.resolve() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


class SinkContract(PluginContract):
    """Inherited tests for a sink.

    Set ``plugin_class``; override ``plugin_options`` if the defaults do not write files under the
    context's output folder. Set ``writes_records = False`` for a sink that writes only a summary,
    and override :meth:`artifact_text` for a sink whose files are not plain text (a workbook, say)
    so the content checks can read them. A sink that uploads returns ``Artifact(..., url=URL)`` for
    each object and overrides :meth:`remote_artifact_exists` so the checks can look where it wrote.

    A sink must return an artifact for everything it writes, and write everything it returns: a
    sink whose ``write`` returns nothing for a result with records fails, as does one that returns
    a file it did not write, an empty file, or a file the run does not list.

    Example::

        class TestExcelSink(SinkContract):
            plugin_class = ExcelSink

            def artifact_text(self, artifact):
                return dump_workbook_as_text(artifact.path)

    """

    domain: ClassVar[str] = "sink"
    hook: ClassVar[str] = "register_sinks"
    writes_records: ClassVar[bool] = True
    """Whether every record's id and values appear in what the sink writes."""

    def artifact_text(self, artifact: Artifact) -> str | None:
        """The text of ``artifact`` for content checks, or None if it cannot be read as text (or is remote)."""
        if artifact.url is not None:
            return None
        if artifact.media_type.startswith("text/") or artifact.media_type in _TEXT_TYPES:
            return artifact.path.read_text(encoding="utf-8")
        return None

    def write(self, plugin: Any, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write ``result`` as the engine does and return the artifacts, checked to be a list of Artifact."""
        written = run_async(invoke(plugin.write, result, ctx))
        assert written is None or isinstance(written, Sequence), f"write() must return artifacts, got {written!r}"
        artifacts = list(written or [])
        for artifact in artifacts:
            assert isinstance(artifact, Artifact), f"write() must return elspeth.Artifact items, got {artifact!r}"
        return artifacts

    def _texts(self, artifacts: list[Artifact]) -> list[str]:
        return [t for t in (self.artifact_text(a) for a in artifacts) if t is not None]

    def check_written(self, artifact: Artifact, *, empty_ok: bool = False) -> None:
        """Fail unless ``artifact`` exists where it says: a local file (not empty), or a remote object by its URL."""
        if artifact.url is not None:
            assert self.remote_artifact_exists(artifact.url), (
                f"{artifact.url} was returned as written but does not exist"
            )
            return
        assert artifact.path.is_file(), f"{artifact.path} was returned as written but does not exist"
        assert empty_ok or artifact.path.stat().st_size > 0, f"{artifact.path} is empty"

    def test_writes_a_result_to_artifacts_that_exist(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Writing a result returns at least one artifact; each exists, is not empty and names the sink."""
        artifacts = self.write(plugin, sample_run_result(), plugin_context)
        assert artifacts, (
            "write() returned no artifacts for a result with records: return an elspeth.Artifact for every file "
            "the sink writes (Artifact(path, media_type, sink, url=URL) for an upload)"
        )
        for artifact in artifacts:
            self.check_written(artifact)
            assert artifact.media_type, f"{artifact.path} has no media type"
            assert artifact.sink == self._class().name, f"Artifact.sink should be {self._class().name!r}"

    def test_written_content_keeps_every_record_and_unicode(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Every record and non-ASCII text survive in the written files."""
        result = sample_run_result()
        texts = self._texts(self.write(plugin, result, plugin_context))
        if not self.writes_records or not texts:
            return
        text = "\n".join(texts)
        assert UNICODE_TEXT in text, "non-ASCII text was lost or escaped in the written files"
        for record in result.records:
            assert record.row_id in text, f"record {record.row_id} is missing from the written files"

    def test_leaves_no_files_it_does_not_report(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Every file left in the output folder was reported; no temporary files remain."""
        artifacts = self.write(plugin, sample_run_result(), plugin_context)
        reported = {a.path.resolve() for a in artifacts}
        left = _files(plugin_context.output_dir) - reported
        assert not left, f"files left behind that write() did not report (temporary files?): {sorted(left)}"

    def test_handles_an_empty_result(self, plugin: Any, plugin_context: PluginContext) -> None:
        """A run with no records and no failures writes without error."""
        artifacts = self.write(plugin, sample_run_result("empty", records=0, failures=0), plugin_context)
        for artifact in artifacts:
            self.check_written(artifact, empty_ok=True)  # no rows may well be an empty file

    def test_second_write_replaces_the_first(self, plugin: Any, plugin_context: PluginContext) -> None:
        """Writing again replaces the files rather than appending to them."""
        first = self.write(plugin, sample_run_result("alpha"), plugin_context)
        second = self.write(plugin, sample_run_result("omega"), plugin_context)
        assert sorted(a.path for a in first) == sorted(a.path for a in second)
        text = "\n".join(self._texts(second))
        if text:
            assert "alpha-" not in text, "the second write kept rows of the first: files must be replaced"
            assert "omega" in text, "the second write's rows are missing"

    def remote_artifact_exists(self, url: str) -> bool:
        """Whether an artifact the sink listed by URL exists; override in the tests of an uploading sink."""
        raise NotImplementedError(
            f"{type(self).__name__}: the sink listed {url} by URL; override remote_artifact_exists to check it"
        )

    def test_writes_the_result_of_a_real_run(
        self, plugin_options: dict[str, Any], plugin_context: PluginContext
    ) -> None:
        """In a real run, the sink writes files that exist and the run lists them (one may be empty: no failures)."""
        from elspeth import load_settings_text, run_settings

        cls = self._class()
        base = Path(plugin_context.base_dir)
        (base / "contract.csv").write_text(f"id,text\na,{UNICODE_TEXT}\nb,plain\n", encoding="utf-8")
        text = (
            "datasource: {plugin: csv, options: {path: contract.csv, id_column: id}}\n"
            "orchestrator: rows\n"
            f"sinks:\n  - {{plugin: {cls.name}, options: {json.dumps(plugin_options, default=str)}}}\n"
            f"output_dir: {json.dumps(str(plugin_context.output_dir))}\n"
        )
        result = run_settings(load_settings_text(text, base_dir=base), self.registry("datasources"))
        assert result.metadata.succeeded == 2
        listed = [artifact.to_dict() for artifact in result.metadata.artifacts or []]
        assert listed, f"the run lists nothing that sink {cls.name!r} wrote: write() must return its artifacts"
        for artifact in listed:
            path = artifact["path"]
            if "://" in path:
                assert self.remote_artifact_exists(path), f"the run reported {path} as written but it does not exist"
            else:
                assert Path(path).is_file(), f"the run reported {path} as written but it does not exist"
            assert artifact["sink"] == cls.name
            assert artifact["security_level"] == result.metadata.security_level
