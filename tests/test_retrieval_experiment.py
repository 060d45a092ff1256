"""The ``retrieval`` utility (elspeth-retrieval) feeding the experiment and batch orchestrators' prompts, end to end."""

from __future__ import annotations

import json

import pytest

from elspeth import ConfigError
from elspeth.discovery import PluginSource
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

pytest.importorskip("elspeth_experiment")
PLUGIN = PluginSource("retrieval", "elspeth-retrieval", "0.1.0", "elspeth_retrieval.plugin")

SETTINGS = """\
datasource: {plugin: csv, options: {path: questions.csv, id_column: id}}
llm: {plugin: static, options: {content: "Score: 4"}}
prompts:
  system: "Answer from the context only."
  user: "Context:\\n{{ context }}\\n\\nQuestion: {{ question }}"
orchestrator: experiment
middleware: [{plugin: audit_logger, options: {path: audit.jsonl, include_prompts: true}}]
utilities:
  - {plugin: retrieval, options: {corpus_path: kb, query_template: "{{ question }}", top_k: 1, index_path: null}}
"""
FILES = {
    "questions.csv": "id,question\nq1,How long do refunds take?\nq2,Is shipping free?\n",
    "kb/refunds.md": "Refunds are paid within five working days.",
    "kb/shipping.md": "Shipping is free for orders over 50 euros.",
    "kb/returns.md": "Returns need the original receipt.",
}


def test_the_prompt_sent_to_the_llm_holds_the_retrieved_passage(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    path = write_settings(SETTINGS, FILES)
    result = run_settings(path, make_registry("elspeth_experiment.plugin", PLUGIN))
    assert not result.failures
    trail = [json.loads(line) for line in (path.parent / "output" / "audit.jsonl").read_text("utf-8").splitlines()]
    prompts = {e["row_id"]: e["user"] for e in trail if e["event"] == "request"}
    assert prompts == {
        "q1": "Context:\nRefunds are paid within five working days.\n\nQuestion: How long do refunds take?",
        "q2": "Context:\nShipping is free for orders over 50 euros.\n\nQuestion: Is shipping free?",
    }
    assert result.metadata.to_dict()["utility"]["retrieval"]["queries"] == 2


def test_without_retrieval_the_context_field_is_reported_before_any_call(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    path = write_settings(SETTINGS.split("utilities:")[0], FILES)
    with pytest.raises(ConfigError, match=r"prompts\.user: template uses 'context'"):
        run_settings(path, make_registry("elspeth_experiment.plugin", PLUGIN))


def test_the_batch_orchestrator_sends_the_retrieved_passage_too(
    write_settings: WriteSettings, run_settings: RunSettings, make_registry: MakeRegistry
) -> None:
    pytest.importorskip("elspeth_batch")
    path = write_settings(SETTINGS.replace("orchestrator: experiment", "orchestrator: batch"), FILES)
    result = run_settings(path, make_registry("elspeth_batch.plugin", PLUGIN))
    assert not list(result.failures)
    trail = [json.loads(line) for line in (path.parent / "output" / "audit.jsonl").read_text("utf-8").splitlines()]
    prompts = {e["row_id"]: e["user"] for e in trail if e["event"] == "request"}
    assert prompts["q2"] == "Context:\nShipping is free for orders over 50 euros.\n\nQuestion: Is shipping free?"
    assert [r.outputs["response"] for r in result.records] == ["Score: 4", "Score: 4"]
