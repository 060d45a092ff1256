"""``pii_redaction``: a corpus of true positives and near misses, both modes, and a real run."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from elspeth.errors import ConfigError, PluginError
from elspeth_processors import PiiRedaction
from elspeth_processors.pii import KINDS, find, iban_valid, luhn_valid
from elspeth_testing import PluginContract, run_async
from elspeth_testing.plugin import MakeRegistry, RunSettings, WriteSettings

# (text, kind, the exact text found)
TRUE_POSITIVES = [
    ("write to a.b+tag@sub.example.co.uk today", "email", "a.b+tag@sub.example.co.uk"),
    ("CONTACT: JOHN_SMITH@EXAMPLE.COM.", "email", "JOHN_SMITH@EXAMPLE.COM"),
    ("visa 4111 1111 1111 1111 exp 12/27", "card", "4111 1111 1111 1111"),
    ("mc 5500-0000-0000-0004", "card", "5500-0000-0000-0004"),
    ("amex 3782 822463 10005", "card", "3782 822463 10005"),
    ("paid with 6011111111111117", "card", "6011111111111117"),
    ("in 2024 4012 8888 8888 1881 was used", "card", "4012 8888 8888 1881"),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban: DE89370400440532013000", "iban", "DE89370400440532013000"),
    ("FR14 2004 1010 0505 0001 3M02 606", "iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("account nl91abna0417164300", "iban", "nl91abna0417164300"),
    ("from 192.168.1.20.", "ip", "192.168.1.20"),
    ("dns 8.8.8.8, then", "ip", "8.8.8.8"),
    ("host 2001:db8::8a2e:370:7334 up", "ip", "2001:db8::8a2e:370:7334"),
    ("loopback ::1 only", "ip", "::1"),
    ("[fe80::1ff:fe23:4567:890a]:80", "ip", "fe80::1ff:fe23:4567:890a"),
    ("call +61 2 9876 5432 now", "phone", "+61 2 9876 5432"),
    ("london +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("dial 0044 20 7946 0958", "phone", "0044 20 7946 0958"),
    ("office (02) 9876 5432", "phone", "(02) 9876 5432"),
    ("mobile 0412 345 678.", "phone", "0412 345 678"),
    ("mobile 0412345678", "phone", "0412345678"),
    ("uk 07700 900123", "phone", "07700 900123"),
    ("berlin 030-1234-5678", "phone", "030-1234-5678"),
    ("paris 01.23.45.67.89", "phone", "01.23.45.67.89"),
    ("nyc (212) 555-0199", "phone", "(212) 555-0199"),
    ("nyc 212-555-0199", "phone", "212-555-0199"),
    ("nyc 212.555.0199", "phone", "212.555.0199"),
    ("us +1 212 555 0199", "phone", "+1 212 555 0199"),
    ("free 1-800-555-0199", "phone", "1-800-555-0199"),
    ("tfn 123 456 782", "au_tfn", "123 456 782"),
    ("my TFN is 123456782", "au_tfn", "123456782"),
    ("Tax file number: 123-456-782", "au_tfn", "123-456-782"),
    ("ABN 51 824 753 556", "au_abn", "51 824 753 556"),
    ("abn: 51824753556", "au_abn", "51824753556"),
    ("ssn 536-22-8726", "us_ssn", "536-22-8726"),
    ("ssn 536 22 8726", "us_ssn", "536 22 8726"),
    ("Social Security 536228726", "us_ssn", "536228726"),
    ("NI AB 12 34 56 C", "uk_nino", "AB 12 34 56 C"),
    ("nino JG103759A.", "uk_nino", "JG103759A"),
]

NEAR_MISSES = [
    "user@localhost",
    "@handle and a@b.c",
    "visa 4111 1111 1111 1112",  # fails Luhn
    "1234 5678 9012 3456",  # fails Luhn
    "0000 0000 0000 0000",  # passes Luhn, but no card starts with 0
    "4111-1111 1111-1111",  # mixed separators
    "ref 9111111111111111",  # no network starts with 9
    "GB82 WEST 1234 5698 7654 33",  # bad mod-97 checksum
    "XX82WEST12345698765432",  # no such country
    "DE89 3704 0044 0532 0130 0",  # one character short
    "999.1.1.1",
    "256.256.256.256",
    "version 1.2.3 and 1.2.3.4.5",
    "192.168.01.1",  # leading zero
    "at 12:30:45",
    "std::vector and dead::beef",
    "2125550199",  # bare digits are not a phone
    "on 15.01.2024",
    "on 01-02-2024 10 people",
    "pi 0.123456789",
    "zip 12345",
    "ISBN 978-3-16-148410-0",
    "order 20240115",
    "+0 123 456 789",  # no country code starts with 0
    "123 456 789",  # fails the TFN check
    "order 123456782",  # passes the TFN check, but bare and without "TFN" near it
    "51 824 753 557",  # fails the ABN check
    "invoice 51824753556",  # bare ABN without "ABN" near it
    "000-12-3456",
    "666-12-3456",
    "900-12-3456",
    "123-00-4567",
    "123-45-0000",
    "078-05-1120",  # the Woolworth wallet number, never issued
    "id 536228726",  # bare, without "SSN" near it
    "GB123456A",  # GB is not an NI prefix
    "AO123456A",  # O is never the second letter
    "AB123456E",  # the suffix is A-D
    "DA123456A",  # D is never the first letter
]


def redactor(**options: Any) -> PiiRedaction:
    return PiiRedaction(PiiRedaction.Options.model_validate(options))


class TestPiiRedactionContract(PluginContract):
    plugin_class = PiiRedaction
    domain: ClassVar[str] = "processor"
    hook: ClassVar[str] = "register_processors"


@pytest.mark.parametrize(("text", "kind", "value"), TRUE_POSITIVES, ids=[t[0] for t in TRUE_POSITIVES])
def test_true_positive_is_found_exactly(text: str, kind: str, value: str) -> None:
    found = [(f.kind, text[f.start : f.end]) for f in find(text)]
    assert found == [(kind, value)]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_miss_is_left_alone(text: str) -> None:
    assert [(f.kind, text[f.start : f.end]) for f in find(text)] == []
    assert redactor().redact(text)[0] == text


def test_the_corpus_covers_every_kind() -> None:
    assert {kind for _, kind, _ in TRUE_POSITIVES} == set(KINDS)


def test_checksums() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765433")


def test_masking_replaces_every_finding_and_keeps_the_rest() -> None:
    text = "Ann (ann@example.com, +44 20 7946 0958) paid 4111 1111 1111 1111 from 10.0.0.1."
    redacted, counts = redactor().redact(text)
    assert redacted == "Ann ([EMAIL], [PHONE]) paid [CARD] from [IP]."
    assert counts == {"email": 1, "phone": 1, "card": 1, "ip": 1}


def test_the_mask_text_is_configurable() -> None:
    assert redactor(mask="<{kind} removed>").redact("x@example.org")[0] == "<EMAIL removed>"
    assert redactor(mask="***").redact("x@example.org")[0] == "***"


def test_only_the_chosen_kinds_are_redacted() -> None:
    text = "ann@example.com on 10.0.0.1"
    assert redactor(kinds=["ip"]).redact(text)[0] == "ann@example.com on [IP]"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kinds"):
        PiiRedaction.Options.model_validate({"kinds": ["dna"]})


def test_pseudonyms_are_salted_tokens_consistent_across_rows_and_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_SALT", "pepper")
    plugin = redactor(mode="pseudonymise", salt_env="PII_SALT")
    first = plugin.process({"t": "mail Ann@Example.com or card 4111 1111 1111 1111"})
    second = plugin.process({"t": "ann@example.com / 4111-1111-1111-1111 / bob@example.com"})
    assert first is not None
    assert second is not None
    words, later = first["t"].split(), second["t"].split(" / ")
    email, card = words[1], words[4]
    assert email.startswith("EMAIL#")
    assert len(email) == len("EMAIL#") + 6
    assert card.startswith("CARD#")
    assert later[0] == email
    assert later[1] == card
    assert later[2].startswith("EMAIL#")
    assert later[2] != email
    assert "ann" not in second["t"].lower()


def test_another_salt_gives_other_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALT_A", "one")
    monkeypatch.setenv("SALT_B", "two")
    a = redactor(mode="pseudonymise", salt_env="SALT_A").redact("x@example.org")[0]
    b = redactor(mode="pseudonymise", salt_env="SALT_B").redact("x@example.org")[0]
    assert a != b


def test_the_american_spelling_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_SALT", "s")
    assert redactor(mode="pseudonymize", salt_env="PII_SALT").options.mode == "pseudonymise"


def test_pseudonymising_without_naming_a_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="mode pseudonymise needs `salt_env`"):
        PiiRedaction.Options.model_validate({"mode": "pseudonymise"})


def test_a_salt_variable_that_is_not_set_is_an_error_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_SALT", raising=False)
    with pytest.raises(
        PluginError, match=r"options\.salt_env names the environment variable NO_SUCH_SALT, which is not set"
    ):
        redactor(mode="pseudonymise", salt_env="NO_SUCH_SALT")


def test_only_string_values_of_the_chosen_columns_are_touched() -> None:
    row = {"note": "ann@example.com", "other": "bob@example.com", "n": 4111111111111111}
    assert redactor(columns=["note", "n"]).process(row) == {
        "note": "[EMAIL]",
        "other": "bob@example.com",
        "n": 4111111111111111,
    }


def test_a_chosen_column_missing_from_the_row_is_named() -> None:
    with pytest.raises(ValueError, match=r"pii_redaction: options\.columns names 'notes'"):
        redactor(columns=["notes"]).process({"note": "x"})


def test_summary_counts_per_kind_and_never_holds_values() -> None:
    plugin = redactor()
    plugin.process({"a": "a@example.com b@example.com", "b": "10.0.0.1"})
    plugin.process({"a": "nothing here"})
    summary = plugin.summary()
    assert summary["mode"] == "mask"
    assert summary["rows_changed"] == 1
    assert summary["total"] == 3
    assert summary["found"]["email"] == 2
    assert summary["found"]["ip"] == 1
    assert summary["found"]["card"] == 0
    assert "example" not in repr(summary)


SETTINGS = """\
datasource: {plugin: csv, options: {path: data.csv, id_column: id}}
llm: {plugin: static, options: {content: "ok"}}
prompts: {user: "{{ note }}"}
orchestrator: rows
processors: [{plugin: pii_redaction, options: {mode: pseudonymise, salt_env: RUN_SALT, columns: [note]}}]
"""


def test_a_run_sends_no_personal_data_and_reports_counts(
    write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_SALT", "run-secret")
    path = write_settings(
        SETTINGS,
        {"data.csv": "id,note\na,mail ann@example.com\nb,ANN@example.com again\nc,call 0412 345 678\n"},
    )
    result = run_settings(path)
    notes = [r.inputs["note"] for r in result.records]
    assert notes[0].split()[1] == notes[1].split()[0]  # one person, one token, in every row
    assert all("@" not in n and "0412" not in n for n in notes)
    assert result.metadata.to_dict()["processor"]["pii_redaction"]["found"]["email"] == 2
    assert result.metadata.to_dict()["processor"]["pii_redaction"]["found"]["phone"] == 1


def test_a_run_whose_salt_is_missing_fails_the_checks(
    write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUN_SALT", raising=False)
    path = write_settings(SETTINGS, {"data.csv": "id,note\na,x\n"})
    with pytest.raises(ConfigError, match=r"processors\[0\].*RUN_SALT, which is not set"):
        run_settings(path)


def test_a_misspelt_column_is_reported_at_its_line_before_any_row(
    write_settings: WriteSettings, run_settings: RunSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUN_SALT", "run-secret")
    path = write_settings(SETTINGS.replace("columns: [note]", "columns: [nte]"), {"data.csv": "id,note\na,x\n"})
    with pytest.raises(ConfigError) as caught:
        run_settings(path)
    assert [str(p) for p in caught.value.problems] == [
        "processors[0].options.columns: processor 'pii_redaction' reads 'nte', which the rows do not have when "
        "it runs (their fields: id, note); did you mean 'note'? (settings.yaml:5)"
    ]


def test_a_step_failing_after_redaction_carries_the_redacted_row(
    write_settings: WriteSettings, make_registry: MakeRegistry
) -> None:
    from elspeth import ProcessorFailed, Row, load_settings
    from elspeth.engine import prepare

    text = (
        "datasource: {plugin: csv, options: {path: data.csv, id_column: id}}\n"
        "orchestrator: rows\n"
        "store: {enabled: false}\n"
        "processors:\n"
        "  - {plugin: pii_redaction, options: {columns: [note]}}\n"
        "  - {plugin: text_cleaning, options: {columns: [note, age]}}\n"
    )
    path = write_settings(text, {"data.csv": "id,note,age\na,x,1\n"})
    prepared = run_async(prepare(load_settings(path), make_registry()))
    row = Row("b", {"note": "mail ann@example.com, card 4111 1111 1111 1111", "age": "1"}, 0)
    cleaned = run_async(prepared.context.preprocess(row))
    assert cleaned.data == {"note": "mail [EMAIL], card [CARD]", "age": "1"}
    # a row without `age` makes text_cleaning, the second step, raise: the failure holds the redacted row
    with pytest.raises(ProcessorFailed) as caught:
        run_async(prepared.context.preprocess(Row("c", {"note": "mail ann@example.com"}, 1)))
    assert caught.value.name == "text_cleaning"
    assert caught.value.row.data == {"note": "mail [EMAIL]"}
    assert (caught.value.row.id, caught.value.row.index) == ("c", 1)
    assert str(caught.value).startswith("ValueError: text_cleaning: options.columns names 'age'")
