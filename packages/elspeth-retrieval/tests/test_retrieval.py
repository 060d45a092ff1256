"""The ``retrieval`` utility: indexing, ranking, options, rebuilds, errors, and a real run."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from elspeth import PluginContext, RunFailed, invoke
from elspeth.errors import ConfigError, PluginError
from elspeth_retrieval import Retrieval, fts_query, normalise_score
from elspeth_testing import PluginContract, run_async
from elspeth_testing.plugin import RunSettings, WriteSettings

CORPUS = {
    "dogs.md": "Dogs bark at strangers and love long walks in the park.",
    "cats.md": "Cats purr when they are content and sleep most of the day.",
    "parrots.txt": "Parrots mimic human speech and can live for decades.",
    "fish.txt": "Goldfish need clean water; a filter keeps the tank healthy.",
    "bark.txt": "Tree bark protects the trunk of a tree from insects.",
    "nfc.md": "NEAR field communication lets phones pay at a terminal.",
    "notes/ignored.csv": "not,indexed\n1,2\n",
    ".hidden/secret.md": "dogs dogs dogs",
}


def write_corpus(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def corpus(plugin_context: PluginContext) -> Path:
    root = plugin_context.base_dir / "corpus"
    write_corpus(root, CORPUS)
    return root


def opened(ctx: PluginContext, **options: Any) -> Retrieval:
    plugin = Retrieval(
        Retrieval.Options.model_validate({"corpus_path": "corpus", "query_template": "{{ q }}", **options})
    )
    plugin.open(ctx)
    return plugin


def ids(plugin: Retrieval, query: str) -> list[str]:
    return [h["id"] for h in plugin.enrich({"q": query})["context_sources"]]


class TestRetrievalContract(PluginContract):
    plugin_class = Retrieval
    domain: ClassVar[str] = "utility"
    hook: ClassVar[str] = "register_utilities"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"corpus_path": "corpus", "query_template": "{{ q }}"}


def test_the_best_matching_passage_comes_first(corpus: Path, plugin_context: PluginContext) -> None:
    plugin = opened(plugin_context)
    assert ids(plugin, "Why do dogs bark at night?")[:2] == ["dogs.md", "bark.txt"]
    assert ids(plugin, "do parrots talk like a human?")[0] == "parrots.txt"


def test_enrich_adds_the_joined_passages_and_their_sources(corpus: Path, plugin_context: PluginContext) -> None:
    plugin = opened(plugin_context, field="background", separator="\n---\n", top_k=2)
    out = plugin.enrich({"q": "dogs bark", "other": 1})
    assert out["other"] == 1
    assert out["background"] == f"{CORPUS['dogs.md']}\n---\n{CORPUS['bark.txt']}"
    sources = out["background_sources"]
    assert [s["id"] for s in sources] == ["dogs.md", "bark.txt"]
    assert 1 > sources[0]["score"] > sources[1]["score"] > 0
    assert plugin.adds_fields == ("background", "background_sources")


def test_top_k_caps_the_passages(corpus: Path, plugin_context: PluginContext) -> None:
    query = "dogs cats parrots goldfish tree phones"
    assert len(ids(opened(plugin_context, index_path=None), query)) == 3  # the default
    assert len(ids(opened(plugin_context, top_k=1, index_path=None), query)) == 1
    assert len(ids(opened(plugin_context, top_k=10, index_path=None), query)) == 6


def test_min_score_drops_weak_matches(corpus: Path, plugin_context: PluginContext) -> None:
    every = opened(plugin_context, top_k=10).search("dogs bark strangers")
    assert [h["id"] for h in every] == ["dogs.md", "bark.txt"]
    threshold = (every[0]["score"] + every[1]["score"]) / 2
    kept = opened(plugin_context, top_k=10, min_score=threshold).search("dogs bark strangers")
    assert [h["id"] for h in kept] == ["dogs.md"]


def test_no_match_gives_empty_context(corpus: Path, plugin_context: PluginContext) -> None:
    plugin = opened(plugin_context)
    assert plugin.enrich({"q": "zebra"}) == {"q": "zebra", "context": "", "context_sources": []}
    assert plugin.enrich({"q": "  ?! "})["context_sources"] == []
    assert plugin.summary()["no_match"] == 2


@pytest.mark.parametrize(
    "query",
    ['dogs" OR "', "dogs*", "NEAR(dogs cats", "-dogs", "body:dogs", "^dogs", "dogs AND", '"""', "(((", "dogs NOT"],
)
def test_user_text_cannot_inject_fts5_syntax(corpus: Path, plugin_context: PluginContext, query: str) -> None:
    found = ids(opened(plugin_context, index_path=None), query)
    if "dogs" in query:
        assert "dogs.md" in found
    else:
        assert found == []


def test_fts5_operator_words_are_searched_as_words(corpus: Path, plugin_context: PluginContext) -> None:
    assert ids(opened(plugin_context, index_path=None), "NEAR")[0] == "nfc.md"
    assert fts_query('say "NEAR" (x)') == '"say" OR "near" OR "x"'


def test_stopwords_are_dropped_unless_nothing_else_is_left() -> None:
    assert fts_query("what is the park") == '"park"'
    assert fts_query("what is the") == '"what" OR "is" OR "the"'
    assert fts_query("the park", stopwords=False) == '"the" OR "park"'
    assert fts_query("dogs walks", match="all") == '"dogs" AND "walks"'
    assert fts_query("?!") is None


def test_match_all_needs_every_word(corpus: Path, plugin_context: PluginContext) -> None:
    assert ids(opened(plugin_context, match="all", index_path=None), "dogs tree") == []
    assert ids(opened(plugin_context, match="all", index_path=None), "tree bark") == ["bark.txt"]


def test_stemming_matches_word_forms(corpus: Path, plugin_context: PluginContext) -> None:
    assert ids(opened(plugin_context, index_path=None), "barking") == []
    assert ids(opened(plugin_context, stemming=True, index_path=None), "barking")[:1] in (["dogs.md"], ["bark.txt"])


def test_score_scale() -> None:
    assert normalise_score(0.0) == 0.0
    assert normalise_score(-1.0) == 0.5
    assert normalise_score(-3.0) == 0.75
    assert normalise_score(-2.0) > normalise_score(-1.5)  # BM25's order is kept


def test_hidden_files_and_other_endings_are_not_indexed(corpus: Path, plugin_context: PluginContext) -> None:
    plugin = opened(plugin_context)
    assert plugin.summary()["passages"] == 6
    assert "indexed" not in " ".join(ids(plugin, "indexed"))


def test_long_files_are_split_into_passages_at_blank_lines(plugin_context: PluginContext) -> None:
    write_corpus(plugin_context.base_dir / "corpus", {"guide.md": "Alpha one.\n\nBeta two.\n\n\nGamma three."})
    plugin = opened(plugin_context, chunk_chars=15, index_path=None)
    assert plugin.summary()["passages"] == 3
    assert plugin.enrich({"q": "gamma"})["context"] == "Gamma three."
    assert ids(plugin, "gamma") == ["guide.md#3"]
    whole = opened(plugin_context, chunk_chars=0, index_path=None)
    assert ids(whole, "gamma") == ["guide.md"]


def test_the_index_is_reused_until_the_corpus_changes(corpus: Path, plugin_context: PluginContext) -> None:
    first = opened(plugin_context)
    assert first.summary()["index"] == "built"
    first.close()
    assert (plugin_context.output_dir / "retrieval-index.sqlite").is_file()
    again = opened(plugin_context)
    assert again.summary()["index"] == "reused"
    again.close()

    (corpus / "dogs.md").write_text("Dogs herd sheep on the farm.", encoding="utf-8")
    changed = opened(plugin_context)
    assert changed.summary()["index"] == "built"
    assert changed.enrich({"q": "sheep"})["context"] == "Dogs herd sheep on the farm."
    assert ids(changed, "strangers") == []
    changed.close()

    (corpus / "zebra.txt").write_text("Zebras have stripes.", encoding="utf-8")
    added = opened(plugin_context)
    assert added.summary()["index"] == "built"
    assert ids(added, "stripes") == ["zebra.txt"]


def test_changing_an_indexing_option_rebuilds_the_index(corpus: Path, plugin_context: PluginContext) -> None:
    opened(plugin_context).close()
    assert opened(plugin_context, stemming=True).summary()["index"] == "built"


def test_a_damaged_index_file_is_rebuilt(corpus: Path, plugin_context: PluginContext) -> None:
    plugin_context.output_path("retrieval-index.sqlite").write_bytes(b"this is not a database")
    plugin = opened(plugin_context)
    assert plugin.summary()["index"] == "built"
    assert ids(plugin, "purr") == ["cats.md"]


def test_a_csv_corpus_uses_its_text_and_id_columns(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "faq.csv").write_text(
        "key,answer\nq1,Refunds take five days.\nq2,\nq3,Shipping is free over 50 euros.\n", encoding="utf-8"
    )
    plugin = opened(plugin_context, corpus_path="faq.csv", text_column="answer", id_column="key")
    assert plugin.summary()["passages"] == 2  # the empty answer is skipped
    assert ids(plugin, "how long do refunds take") == ["q1"]


def test_a_jsonl_corpus_without_ids_numbers_its_lines(plugin_context: PluginContext) -> None:
    lines = [{"text": "Refunds take five days."}, {"text": "Shipping is free."}]
    (plugin_context.base_dir / "kb.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    assert ids(opened(plugin_context, corpus_path="kb.jsonl"), "shipping") == ["kb.jsonl:2"]


def test_a_missing_corpus_is_an_error_naming_the_setting(plugin_context: PluginContext) -> None:
    with pytest.raises(PluginError, match=r"options.corpus_path 'corpus' does not exist \(looked for .*corpus\)"):
        opened(plugin_context)


def test_an_empty_corpus_is_an_error(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "corpus").mkdir()
    with pytest.raises(PluginError, match=r"options.corpus_path 'corpus' holds no text to index"):
        opened(plugin_context)
    assert not list(plugin_context.output_dir.glob("*.tmp"))


def test_a_csv_corpus_without_the_text_column_names_it(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "faq.csv").write_text("key,answer\nq1,x\n", encoding="utf-8")
    with pytest.raises(PluginError, match=r"faq.csv row 1 has no column 'text' \(options.text_column\); it has: key"):
        opened(plugin_context, corpus_path="faq.csv")


def test_a_bad_jsonl_line_is_named(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "kb.jsonl").write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    with pytest.raises(PluginError, match=r"kb\.jsonl line 2 is not JSON"):
        opened(plugin_context, corpus_path="kb.jsonl")


def test_a_query_template_that_does_not_compile_is_refused() -> None:
    with pytest.raises(ValueError, match="query_template"):
        Retrieval.Options.model_validate({"corpus_path": "c", "query_template": "{{ q "})


def test_a_field_name_templates_cannot_use_is_refused() -> None:
    with pytest.raises(ValueError, match="not a name a template can use"):
        Retrieval.Options.model_validate({"corpus_path": "c", "query_template": "{{ q }}", "field": "my context"})


def test_a_row_without_the_query_field_fails_naming_the_option(corpus: Path, plugin_context: PluginContext) -> None:
    with pytest.raises(ValueError, match=r"retrieval: options.query_template: .*'q' is undefined"):
        opened(plugin_context).enrich({"question": "dogs"})


def test_without_fts5_the_error_says_so(
    corpus: Path, plugin_context: PluginContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_connect = sqlite3.connect

    class NoFts5:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.db = real_connect(*args, **kwargs)

        def execute(self, sql: str, *args: Any) -> Any:
            if "fts5" in sql:
                raise sqlite3.OperationalError("no such module: fts5")
            return self.db.execute(sql, *args)

        def close(self) -> None:
            self.db.close()

    monkeypatch.setattr(sqlite3, "connect", NoFts5)
    with pytest.raises(PluginError, match="retrieval needs SQLite's FTS5 full-text extension"):
        opened(plugin_context)


def test_many_rows_at_once_each_get_their_own_passages(corpus: Path, plugin_context: PluginContext) -> None:
    plugin = opened(plugin_context)
    queries = ["dogs", "cats", "parrots", "goldfish"] * 25

    async def main() -> list[Any]:
        return await asyncio.gather(*(invoke(plugin.enrich, {"q": q}) for q in queries))

    started = time.perf_counter()
    results = run_async(main())
    assert [r["context_sources"][0]["id"] for r in results] == [
        {"dogs": "dogs.md", "cats": "cats.md", "parrots": "parrots.txt", "goldfish": "fish.txt"}[q] for q in queries
    ]
    assert plugin.summary()["queries"] == 100
    assert time.perf_counter() - started < 5


RUN = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: static, options: {content: "ok"}}
prompts: {user: "{{ question }}"}
orchestrator: rows
utilities:
  - {plugin: retrieval, options: {corpus_path: corpus, query_template: "{{ question }}", top_k: 1}}
"""


def test_in_a_run_every_row_gets_context_and_the_metadata_says_what_was_indexed(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    files = {f"corpus/{name}": text for name, text in CORPUS.items()}
    path = write_settings(RUN, {"data.csv": "id,question\na,Do cats purr?\nb,What is a zebra?\n", **files})
    result = run_settings(path)
    a, b = result.records
    assert a.inputs["context"] == CORPUS["cats.md"]
    assert [s["id"] for s in a.inputs["context_sources"]] == ["cats.md"]
    assert (b.inputs["context"], b.inputs["context_sources"]) == ("", [])
    summary = result.metadata.to_dict()["utility"]["retrieval"]
    assert (summary["passages"], summary["index"], summary["queries"], summary["no_match"]) == (6, "built", 2, 1)
    assert (path.parent / "output" / "retrieval-index.sqlite").is_file()


def test_a_run_with_a_missing_corpus_stops_before_any_row(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(RUN, {"data.csv": "id,question\na,x\n"})
    with pytest.raises(RunFailed, match=r"utility 'retrieval' could not open: .*options.corpus_path 'corpus'"):
        run_settings(path)


def test_bad_retrieval_options_fail_the_settings_check(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(RUN.replace("top_k: 1", "top_k: 0"), {"data.csv": "id,question\na,x\n"})
    with pytest.raises(ConfigError, match=r"utilities\[0\]\.options\.top_k"):
        run_settings(path)


def test_a_query_field_the_rows_do_not_have_is_reported_at_its_line_before_any_row(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    # no corpus: the check comes before the index is built, so `elspeth validate` catches the typo
    text = RUN.replace('query_template: "{{ question }}"', 'query_template: "{{ questoin }}"')
    path = write_settings(text, {"data.csv": "id,question\na,x\n"})
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    assert [str(p) for p in caught.value.problems] == [
        "utilities[0].options.query_template: utility 'retrieval' reads 'questoin', which the rows do not have "
        "when it runs (their fields: id, question); did you mean 'question'? (settings.yaml:6)"
    ]
    assert not (path.parent / "output").exists()


def test_a_query_cannot_read_the_field_retrieval_itself_adds(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    text = RUN.replace('query_template: "{{ question }}"', 'query_template: "{{ context }} {{ question }}"')
    path = write_settings(text, {"data.csv": "id,question\na,x\n"})
    with pytest.raises(ConfigError, match=r"utility 'retrieval' reads 'context'"):
        run_settings(path)  # its own field is not there before it runs


def test_no_sink_may_replace_the_corpus_or_the_index(write_settings: WriteSettings, run_settings: RunSettings) -> None:
    sinks = "output_dir: .\nsinks:\n  - {plugin: csv, options: {path: corpus/cats.md}}\n"
    sinks += "  - {plugin: jsonl, options: {path: retrieval-index.sqlite}}\n"
    files = {f"corpus/{name}": text for name, text in CORPUS.items()}
    path = write_settings(RUN + sinks, {"data.csv": "id,question\na,x\n", **files})
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    first, second = (str(p) for p in caught.value.problems)
    assert first.startswith("sinks[0].options.path: sink 'csv' would overwrite ")
    assert "corpus/cats.md" in first
    assert "sinks[1].options.path: sink 'jsonl' would overwrite " in second
    assert "which utility 'retrieval' also writes" in second
    assert (path.parent / "corpus" / "cats.md").read_text(encoding="utf-8") == CORPUS["cats.md"]
