"""The ``text_cleaning`` and ``schema_validation`` processors, alone and in real runs."""

from __future__ import annotations

import builtins
import json
import sys
from typing import Any, ClassVar

import pytest

from elspeth import ConfigError, PluginContext, RunFailed
from elspeth.errors import PluginError
from elspeth_processors import SchemaValidation, SchemaViolation, TextCleaning, strip_html
from elspeth_testing import PluginContract, run_async
from elspeth_testing.plugin import RunSettings, WriteSettings


def cleaner(**options: Any) -> TextCleaning:
    return TextCleaning(TextCleaning.Options.model_validate(options))


def validator(**options: Any) -> SchemaValidation:
    return SchemaValidation(SchemaValidation.Options.model_validate(options))


class TestTextCleaningContract(PluginContract):
    plugin_class = TextCleaning
    domain: ClassVar[str] = "processor"
    hook: ClassVar[str] = "register_processors"


class TestSchemaValidationContract(PluginContract):
    plugin_class = SchemaValidation
    domain: ClassVar[str] = "processor"
    hook: ClassVar[str] = "register_processors"

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"schema": {"type": "object"}}


# ---- text_cleaning ---------------------------------------------------------------------------


def test_default_cleaning_normalises_and_collapses_whitespace_in_every_string_column() -> None:
    row = {"a": "  Cafe\u0301   au\tlait \n", "b": "x\u200by", "n": 3, "none": None}
    assert cleaner().process(row) == {"a": "Caf\u00e9 au lait", "b": "xy", "n": 3, "none": None}


def test_nfkc_folds_compatibility_forms_and_nfc_keeps_them() -> None:
    text = "\ufb01le \uff21\uff22\uff23 \u2460"  # ligature fi, full-width ABC, circled 1
    assert cleaner(normalize="NFKC").clean(text) == "file ABC 1"
    assert cleaner(normalize="NFC").clean(text) == text


def test_html_is_stripped_to_what_a_reader_sees() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<p>Fish &amp; chips &lt;3</p><p>caf&eacute;<br>open</p><script>alert('x')</script>"
        "<!-- hidden --><a href='http://x'>link</a></body></html>"
    )
    assert cleaner(strip_html=True).clean(html) == "Fish & chips <3 café open link"
    assert strip_html("<p>a</p><p>b</p>") == "\na\n\nb\n"


def test_html_stripping_leaves_plain_comparisons_alone() -> None:
    assert cleaner(strip_html=True).clean("x < 3 and y > 2") == "x < 3 and y > 2"


def test_html_is_kept_unless_asked() -> None:
    assert cleaner().clean("<b>bold</b>") == "<b>bold</b>"


def test_keep_newlines_keeps_paragraphs_but_tidies_lines() -> None:
    text = "  first   line  \r\nsecond\n\n\n\n  third  "
    assert cleaner(keep_newlines=True).clean(text) == "first line\nsecond\n\nthird"


def test_only_the_chosen_columns_are_cleaned() -> None:
    row = {"keep": "  a  ", "clean": "  b  "}
    assert cleaner(columns=["clean"]).process(row) == {"keep": "  a  ", "clean": "b"}


def test_an_unchanged_row_is_left_as_it_is() -> None:
    assert cleaner().process({"a": "tidy"}) is None


def test_a_chosen_column_missing_from_the_row_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"text_cleaning: options.columns names 'body'.*its fields: title"):
        cleaner(columns=["body"]).process({"title": "x"})


def test_an_unknown_normal_form_is_refused() -> None:
    with pytest.raises(ValueError, match="normalize"):
        TextCleaning.Options.model_validate({"normalize": "NFX"})


# ---- schema_validation -----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
        "vip": {"type": "boolean"},
    },
}


def test_a_valid_row_passes_with_csv_strings_converted_to_the_declared_types() -> None:
    out = validator(schema=SCHEMA).process({"name": "Ann", "age": "42", "vip": "TRUE", "note": "7"})
    assert out == {"name": "Ann", "age": 42, "vip": True, "note": "7"}


def test_without_coercion_a_csv_string_is_not_an_integer() -> None:
    with pytest.raises(SchemaViolation, match=r"field 'age': '42' is not of type 'integer' \(rule: type\)"):
        validator(schema=SCHEMA, coerce=False).process({"name": "Ann", "age": "42"})


def test_a_failing_row_names_its_field_and_rule() -> None:
    with pytest.raises(SchemaViolation) as caught:
        validator(schema=SCHEMA).process({"name": "Ann", "age": "-3"})
    assert (
        str(caught.value)
        == "row does not match the schema: field 'age': -3 is less than the minimum of 0 (rule: minimum)"
    )


def test_a_missing_required_field_is_named() -> None:
    with pytest.raises(SchemaViolation, match=r"field 'age': 'age' is a required property \(rule: required\)"):
        validator(schema=SCHEMA).process({"name": "Ann"})


def test_every_failing_field_is_reported() -> None:
    with pytest.raises(SchemaViolation) as caught:
        validator(schema=SCHEMA).process({"name": "", "age": "old", "email": "no-at-sign"})
    message = str(caught.value)
    assert "field 'age'" in message
    assert "(rule: type)" in message
    assert "field 'email'" in message
    assert "(rule: pattern)" in message
    assert "field 'name'" in message
    assert "(rule: minLength)" in message


def test_a_value_that_does_not_read_as_a_number_is_left_for_the_schema_to_reject() -> None:
    with pytest.raises(SchemaViolation, match="'nan' is not of type 'integer'"):
        validator(schema=SCHEMA).process({"name": "x", "age": "nan"})


def test_an_invalid_schema_is_refused_when_the_processor_is_built() -> None:
    with pytest.raises(PluginError, match=r"options.schema is not a valid JSON Schema \(properties/age/type\)"):
        validator(schema={"properties": {"age": {"type": "whole number"}}})


def test_schema_and_schema_path_are_exclusive() -> None:
    with pytest.raises(ValueError, match="exactly one of `schema`"):
        SchemaValidation.Options.model_validate({})
    with pytest.raises(ValueError, match="exactly one of `schema`"):
        SchemaValidation.Options.model_validate({"schema": {}, "schema_path": "s.json"})


def test_schema_path_is_read_relative_to_the_settings_file(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "schemas").mkdir()
    (plugin_context.base_dir / "schemas" / "row.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    plugin = validator(schema_path="schemas/row.json")
    plugin.open(plugin_context)
    assert plugin.process({"name": "Ann", "age": "1"}) == {"name": "Ann", "age": 1}


def test_a_yaml_schema_file_works_too(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "row.yaml").write_text("type: object\nrequired: [id]\n", encoding="utf-8")
    plugin = validator(schema_path="row.yaml")
    plugin.open(plugin_context)
    with pytest.raises(SchemaViolation, match="field 'id'"):
        plugin.process({})


def test_a_missing_schema_file_is_an_error_naming_the_setting(plugin_context: PluginContext) -> None:
    with pytest.raises(PluginError, match=r"options.schema_path 'nope.json' does not exist \(looked for .*nope.json\)"):
        validator(schema_path="nope.json").open(plugin_context)


def test_a_schema_file_that_is_not_json_names_line_and_column(plugin_context: PluginContext) -> None:
    (plugin_context.base_dir / "bad.json").write_text('{\n  "type": object\n}', encoding="utf-8")
    with pytest.raises(PluginError, match=r"'bad.json' is not valid JSON \(line 2, column 11\)"):
        validator(schema_path="bad.json").open(plugin_context)


def test_without_jsonschema_installed_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_jsonschema(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jsonschema" or name.startswith("jsonschema."):
            raise ImportError("No module named 'jsonschema'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "jsonschema", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_jsonschema)
    with pytest.raises(PluginError, match="pip install jsonschema"):
        validator(schema={"type": "object"})


# ---- in a run --------------------------------------------------------------------------------

RUN = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: static, options: {content: "ok"}}
prompts: {user: "{{ text }} is {{ age }}"}
orchestrator: rows
processors:
  - {plugin: text_cleaning, options: {strip_html: true, columns: [text]}}
  - {plugin: schema_validation, options: {schema_path: schema.json}}
"""
ROW_SCHEMA = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 18}}}


def test_processors_run_in_order_and_a_failing_row_is_recorded_with_the_reason(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(
        RUN,
        {"data.csv": "id,text,age\na,<b>Ann</b>  &amp; co,30\nb,Bob,12\n", "schema.json": json.dumps(ROW_SCHEMA)},
    )
    result = run_settings(path)
    (record,) = result.records
    assert record.inputs == {"id": "a", "text": "Ann & co", "age": 30}
    (failure,) = result.failures
    assert (failure.row_id, failure.stage) == ("b", "processor")
    assert failure.error == (
        "SchemaViolation: row does not match the schema: field 'age': 12 is less than the minimum of 18 (rule: minimum)"
    )
    assert result.metadata.to_dict()["processor"] == {
        "text_cleaning": {"rows_changed": 1},
        "schema_validation": {"checked": 2, "failed": 1},
    }


def test_a_run_with_a_missing_schema_file_stops_before_any_row(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(RUN, {"data.csv": "id,text,age\na,x,30\n"})
    with pytest.raises(RunFailed, match=r"processor 'schema_validation' could not open.*schema_path 'schema.json'"):
        run_settings(path)


def test_bad_processor_options_fail_the_settings_check(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(RUN.replace("{schema_path: schema.json}", "{}"), {"data.csv": "id,text,age\na,x,30\n"})
    with pytest.raises(ConfigError, match=r"processors\[1\]\.options.*exactly one of `schema`"):
        run_settings(path)


def test_processors_can_be_called_from_async_code() -> None:
    from elspeth import invoke

    assert run_async(invoke(cleaner().process, {"a": " x "})) == {"a": "x"}


def test_a_misspelt_column_is_reported_at_its_line_before_any_row(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    path = write_settings(RUN.replace("columns: [text]", "columns: [txet]"), {"data.csv": "id,text,age\na,x,30\n"})
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    assert [str(p) for p in caught.value.problems] == [
        "processors[0].options.columns: processor 'text_cleaning' reads 'txet', which the rows do not have when "
        "it runs (their fields: id, text, age); did you mean 'text'? (settings.yaml:6)"
    ]


def test_a_processor_listed_twice_keeps_both_summaries(
    write_settings: WriteSettings, run_settings: RunSettings
) -> None:
    text = (
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        "orchestrator: rows\n"
        "processors:\n"
        "  - {plugin: text_cleaning, options: {columns: [a]}}\n"
        "  - {plugin: schema_validation, options: {schema: {type: object}}}\n"
        "  - {plugin: text_cleaning, options: {columns: [b]}}\n"
    )
    path = write_settings(text, {"data.csv": "id,a,b\n1, x ,y\n2,x, y \n3, x , y \n"})
    result = run_settings(path)
    assert result.metadata.to_dict()["processor"] == {
        "text_cleaning[0]": {"rows_changed": 2},
        "schema_validation": {"checked": 3, "failed": 0},
        "text_cleaning[2]": {"rows_changed": 2},
    }


def test_the_schema_file_is_declared_as_an_input(plugin_context: PluginContext) -> None:
    from elspeth import DeclaredPath, ReadsFiles

    plugin = validator(schema_path="schemas/../row.json")
    assert isinstance(plugin, ReadsFiles)
    assert plugin.input_paths(plugin_context) == [DeclaredPath("schema_path", plugin_context.base_dir / "row.json")]
    assert validator(schema={"type": "object"}).input_paths(plugin_context) == []
