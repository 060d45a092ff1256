"""Parsers have limits: YAML aliases, nesting and size; linear CSV headers, NUL bytes, empty inputs (issue 12.2)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from elspeth import ConfigError
from elspeth.config import load_settings
from elspeth.config._yaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from elspeth.csvread import CsvOptions, CsvReader, DataError


def refused(tmp_path: Path, text: str) -> tuple[str, float]:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value), time.perf_counter() - t0


def test_an_alias_bomb_is_refused_quickly_at_its_line(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    message, took = refused(tmp_path, "\n".join(lines) + "\n")
    assert took < 1.0
    assert f"refused: the document expands to more than {MAX_VALUES:,} values through aliases" in message
    assert message.endswith("(settings.yaml:5)")  # a4, the first key whose expansion passes the limit


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 10_000 + "]" * 10_000 + "\n",  # flow style
        "a: " + "{b: " * 10_000 + "c" + "}" * 10_000 + "\n",
        "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n",  # block style
    ],
)
def test_deep_nesting_is_refused_quickly_with_the_line(tmp_path: Path, text: str) -> None:
    message, took = refused(tmp_path, text)
    assert took < 1.0
    assert f"refused: the settings are nested more than {MAX_DEPTH} levels deep" in message
    assert "RecursionError" not in message
    assert "(settings.yaml:" in message


def test_an_anchor_used_inside_itself_is_refused(tmp_path: Path) -> None:
    message, took = refused(tmp_path, "name: x\nloop: &a [*a]\n")
    assert took < 1.0
    assert f"nested more than {MAX_DEPTH} levels deep through aliases (an anchor used inside itself?)" in message
    assert message.endswith("(settings.yaml:2)")


def test_a_settings_file_too_large_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    message, took = refused(tmp_path, "name: x\n" + "#" * (MAX_BYTES + 1) + "\n")
    assert took < 1.0
    assert message == f"refused: the settings are larger than {MAX_BYTES:,} bytes (settings.yaml)"


def test_ordinary_anchors_and_merges_still_load(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    text = "x-llm: &llm {plugin: static, options: {content: hi}}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="x-llm: unknown key"):
        load_settings(path)  # parsed fine; only the schema objects


def reader(tmp_path: Path, data: bytes, **options: object) -> CsvReader:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    return CsvReader(CsvOptions.model_validate(options), lambda: path.open("rb"), name="data.csv")


def test_a_200000_column_header_checks_in_under_a_second(tmp_path: Path) -> None:
    columns = [f"c{i}" for i in range(200_000)]
    data = (",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n").encode()
    took = []
    for _ in range(2):  # the better of two: the machine may be busy with something else for a moment
        t0 = time.perf_counter()
        assert len(reader(tmp_path, data, id_column="c7").check()) == 200_000
        took.append(time.perf_counter() - t0)
    assert min(took) < 1.0


def test_duplicates_in_a_200000_column_header_are_named_in_under_a_second(tmp_path: Path) -> None:
    columns = [f"c{i}" for i in range(200_000)] + ["c5", "c9"]
    took = []
    for _ in range(2):  # the better of two: the machine may be busy with something else for a moment
        t0 = time.perf_counter()
        with pytest.raises(DataError, match=r"duplicate column names in its header: c5, c9$"):
            reader(tmp_path, (",".join(columns) + "\n").encode()).check()
        took.append(time.perf_counter() - t0)
    assert min(took) < 1.0


def test_a_missing_id_column_lists_only_the_first_columns(tmp_path: Path) -> None:
    columns = [f"c{i}" for i in range(200_000)]
    with pytest.raises(DataError) as caught:
        reader(tmp_path, (",".join(columns) + "\n").encode(), id_column="id").check()
    assert str(caught.value).endswith("c18, c19, ... (199,980 more))")


def test_a_nul_byte_in_a_field_is_refused_naming_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^data\.csv line 3, column 2: a NUL byte in a field"):
        reader(tmp_path, b"id,text\na,fine\nb,bin\x00ary\n").check()
    with pytest.raises(DataError, match=r"^data\.csv line 1, column 2: a NUL byte"):
        reader(tmp_path, b"id,te\x00xt\na,fine\n").check()


def test_allow_nul_lets_them_through(tmp_path: Path) -> None:
    csv = reader(tmp_path, b"id,text\nb,bin\x00ary\n", allow_nul=True)
    header = csv.check()
    assert [r.data["text"] for r in csv.rows(header)] == ["bin\x00ary"]


def test_a_header_without_rows_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="elspeth"):
        assert reader(tmp_path, b"id,text\n").check() == ["id", "text"]
    assert "warning: data.csv has a header but no data rows: the run has nothing to do" in caplog.text


@pytest.mark.parametrize(("text", "line"), [("\x1f", 1), ("name: x\nfoo: a\x1fb\n", 2)])
def test_a_control_character_is_a_settings_error_at_its_line(tmp_path: Path, text: str, line: int) -> None:
    message, _ = refused(tmp_path, text)
    assert message == f"not valid YAML: special characters are not allowed: character U+001F (settings.yaml:{line})"


def test_a_long_chain_of_anchors_is_refused_without_a_recursion_error(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 2000)]
    message, took = refused(tmp_path, "\n".join(lines) + "\n")
    assert took < 1.0
    assert f"refused: nested more than {MAX_DEPTH} levels deep through aliases" in message
    assert message.endswith("(settings.yaml:63)")  # a62: the first whose value nests too deep
