"""The ``azure_blob`` and ``csv_blob`` datasources against Azurite: real SDK, real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from elspeth import ConfigError, ElspethError, PluginContext, Row, Table, invoke, iterate_rows
from elspeth_azure_blob import AzureBlobDataSource, BlobError, CsvBlobDataSource
from elspeth_testing import UNICODE_TEXT, DataSourceContract

CSV_TEXT = f'id,product,review\nr1,kettle,Boils fast\nr2,toaster,"Burns bread, sadly"\nr3,lamp,{UNICODE_TEXT}\n'
JSONL_ROWS = [
    {"id": "a", "product": "kettle", "stars": 5, "tags": ["fast"]},
    {"id": "b", "product": "lamp", "stars": 2, "tags": []},
    {"id": "c", "product": UNICODE_TEXT, "stars": None, "tags": ["x"]},
]


def put(service: Any, container: str, blob: str, data: str | bytes) -> None:
    service.get_blob_client(container, blob).upload_blob(data, overwrite=True)


def read(source: Any, ctx: PluginContext) -> tuple[Table, list[Row]]:
    async def go() -> tuple[Table, list[Row]]:
        table = await invoke(source.load, ctx)
        return table, [row async for row in iterate_rows(table.rows)]

    return asyncio.run(go())


def build(cls: Any, **options: Any) -> Any:
    return cls(cls.Options.model_validate(options))


# --- the contract every datasource passes, once per way of addressing and authenticating --------------------


class TestCsvByContainerAndConnectionString(DataSourceContract):
    plugin_class = AzureBlobDataSource

    @pytest.fixture
    def plugin_options(self, service: Any, container: str, azure_env: dict[str, str]) -> dict[str, Any]:
        put(service, container, "in/reviews.csv", CSV_TEXT)
        return {
            "container": container,
            "blob": "in/reviews.csv",
            "id_column": "id",
            "connection_string_env": "TEST_AZURITE_CONNECTION",
        }


class TestJsonlByBlobUrlAndAccountKey(DataSourceContract):
    plugin_class = AzureBlobDataSource

    @pytest.fixture
    def plugin_options(self, service: Any, container: str, azurite: Any, azure_env: dict[str, str]) -> dict[str, Any]:
        put(service, container, "in/reviews.jsonl", "".join(json.dumps(r) + "\n" for r in JSONL_ROWS))
        return {
            "blob_url": f"{azurite.account_url}/{container}/in/reviews.jsonl",
            "account_key_env": "TEST_AZURITE_KEY",
        }


class TestCsvBlobWithSasToken(DataSourceContract):
    plugin_class = CsvBlobDataSource

    @pytest.fixture
    def plugin_options(
        self, service: Any, container: str, azurite: Any, monkeypatch: pytest.MonkeyPatch
    ) -> dict[str, Any]:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        put(service, container, "reviews.txt", CSV_TEXT)
        token = generate_container_sas(
            azurite.account,
            container,
            account_key=azurite.key,
            permission=ContainerSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        monkeypatch.setenv("TEST_AZURITE_SAS", "?" + token)
        return {
            "account_url": azurite.account_url,
            "container": container,
            "blob": "reviews.txt",
            "sas_token_env": "TEST_AZURITE_SAS",
        }


# --- what a user sees -------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_values_ids_and_order(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "reviews.csv", CSV_TEXT)
    source = build(
        AzureBlobDataSource,
        container=container,
        blob="reviews.csv",
        id_column="id",
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    table, rows = read(source, plugin_context)
    assert table.columns == ["id", "product", "review"]
    assert table.source.endswith(f"/{container}/reviews.csv")
    assert [r.id for r in rows] == ["r1", "r2", "r3"]
    assert rows[1].data == {"id": "r2", "product": "toaster", "review": "Burns bread, sadly"}
    assert rows[2].data["review"] == UNICODE_TEXT


def test_jsonl_round_trip_keeps_json_types_and_numbers_rows_without_id_column(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "data/reviews.ndjson", "\n".join(json.dumps(r) for r in JSONL_ROWS) + "\n\n")
    source = build(
        AzureBlobDataSource,
        container=container,
        blob="data/reviews.ndjson",
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    table, rows = read(source, plugin_context)
    assert table.columns == ["id", "product", "stars", "tags"]
    assert [r.id for r in rows] == ["1", "2", "3"]
    assert [dict(r.data) for r in rows] == JSONL_ROWS


def test_format_option_overrides_the_extension(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "export.txt", "\n".join(json.dumps(r) for r in JSONL_ROWS))
    source = build(
        AzureBlobDataSource,
        container=container,
        blob="export.txt",
        format="jsonl",
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    _, rows = read(source, plugin_context)
    assert len(rows) == 3


def test_a_blob_larger_than_one_chunk_streams_intact_across_chunk_boundaries(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    # 64 KiB chunks and ~1.5 MB of multi-byte text: characters and lines are split between chunks
    lines = [f"{i},{UNICODE_TEXT * 3} {i},{'é' * (i % 50)}" for i in range(6000)]
    put(service, container, "big.csv", ("n,text,pad\n" + "\n".join(lines) + "\n").encode())
    source = build(
        CsvBlobDataSource,
        container=container,
        blob="big.csv",
        id_column="n",
        chunk_size=64 * 1024,
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    _, rows = read(source, plugin_context)
    assert len(rows) == 6000
    assert rows[4321].data == {"n": "4321", "text": f"{UNICODE_TEXT * 3} 4321", "pad": "é" * (4321 % 50)}


def test_columns_come_before_rows_and_rows_come_from_the_same_version_of_the_blob(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "reviews.csv", CSV_TEXT)
    source = build(
        AzureBlobDataSource, container=container, blob="reviews.csv", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    table = source.load(plugin_context)
    assert table.columns == ["id", "product", "review"]
    put(service, container, "reviews.csv", "other,columns\n1,2\n")  # replaced before the run reads the rows
    with pytest.raises(
        BlobError, match=rf"blob 'reviews.csv' in container '{container}'.*changed while it was being read"
    ):
        list(table.rows)


# --- errors name the place and never show the secret ------------------------------------------------------


def test_a_missing_container_is_named(azure_env: dict[str, str], plugin_context: PluginContext) -> None:
    source = build(
        AzureBlobDataSource, container="nosuchcontainer", blob="x.csv", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    with pytest.raises(
        ElspethError, match="container 'nosuchcontainer' does not exist in storage account 'devstoreaccount1'"
    ):
        source.load(plugin_context)


def test_a_missing_blob_is_named(container: str, azure_env: dict[str, str], plugin_context: PluginContext) -> None:
    source = build(
        AzureBlobDataSource, container=container, blob="in/missing.csv", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    with pytest.raises(ElspethError, match=f"blob 'in/missing.csv' does not exist in container '{container}'"):
        source.load(plugin_context)


def test_a_wrong_key_names_the_account_and_the_variable_but_never_the_key(
    service: Any, container: str, azurite: Any, monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    put(service, container, "reviews.csv", CSV_TEXT)
    wrong = "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXkgZm9yIHRlc3Rpbmcgb25seQ=="
    monkeypatch.setenv("TEST_WRONG_KEY", wrong)
    source = build(
        AzureBlobDataSource,
        account_url=azurite.account_url,
        container=container,
        blob="reviews.csv",
        account_key_env="TEST_WRONG_KEY",
    )
    with pytest.raises(ElspethError) as caught:
        source.load(plugin_context)
    message = str(caught.value)
    assert "storage account 'devstoreaccount1'" in message
    assert "$TEST_WRONG_KEY" in message
    assert f"blob 'reviews.csv' in container '{container}'" in message
    assert "refused" in message
    assert "(AuthorizationFailure)" in message or "(AuthenticationFailed)" in message  # Azurite's code, Azure's code
    assert wrong not in message
    assert caught.value.__cause__ is None  # no SDK exception (with request details) chained behind it


def test_a_key_that_is_not_base64_is_reported_without_showing_it(
    container: str, azurite: Any, monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    monkeypatch.setenv("TEST_BAD_KEY", "not-a-key!")
    source = build(
        AzureBlobDataSource,
        account_url=azurite.account_url,
        container=container,
        blob="a.csv",
        account_key_env="TEST_BAD_KEY",
    )
    with pytest.raises(ElspethError) as caught:
        source.load(plugin_context)
    assert "not-a-key!" not in str(caught.value)
    assert "TEST_BAD_KEY" in str(caught.value)


def test_a_missing_environment_variable_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_UNSET_CONNECTION", raising=False)
    with pytest.raises(
        ConfigError, match=r"environment variable TEST_UNSET_CONNECTION .*connection_string_env.* not set"
    ):
        build(AzureBlobDataSource, container="c", blob="a.csv", connection_string_env="TEST_UNSET_CONNECTION")


def test_a_malformed_connection_string_is_reported_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, plugin_context: PluginContext
) -> None:
    monkeypatch.setenv("TEST_BAD_CONNECTION", "AccountKey=s3cr3t-value")
    source = build(AzureBlobDataSource, container="c", blob="a.csv", connection_string_env="TEST_BAD_CONNECTION")
    with pytest.raises(ConfigError) as caught:
        source.load(plugin_context)
    assert "$TEST_BAD_CONNECTION is malformed" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"container": "c", "blob": "a.parquet", "connection_string_env": "X"},
            "cannot tell the format of blob 'a.parquet'",
        ),
        ({"container": "c", "connection_string_env": "X"}, "set container and blob"),
        (
            {"blob_url": "https://acct.blob.core.windows.net/c/a.csv?sv=2024&sig=abc", "sas_token_env": "X"},
            "must not carry a SAS token",
        ),
        (
            {"blob_url": "https://acct.blob.core.windows.net/c", "sas_token_env": "X"},
            "must name a container and a blob",
        ),
        (
            {"account_url": "http://127.0.0.1:1/acct", "container": "c", "blob": "a.csv"},
            "DefaultAzureCredential works only over https",
        ),
        ({"container": "c", "blob": "a.csv", "sas_token_env": "X", "account_key_env": "Y"}, "set at most one of"),
    ],
)
def test_options_that_cannot_work_are_refused_before_any_request(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        AzureBlobDataSource.Options.model_validate(options)


def test_a_bad_json_line_is_named_by_number(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "rows.jsonl", '{"a": 1}\n{"a": 2}\n{"a": 3,\n')
    source = build(
        AzureBlobDataSource, container=container, blob="rows.jsonl", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    with pytest.raises(BlobError, match=rf"blob 'rows.jsonl' in container '{container}' line 3: not valid JSON"):
        source.load(plugin_context)  # the whole blob is checked before any row is used
    streaming = build(
        AzureBlobDataSource,
        container=container,
        blob="rows.jsonl",
        check_before_run=False,
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    rows = iter(streaming.load(plugin_context).rows)
    assert [next(rows).data, next(rows).data] == [{"a": 1}, {"a": 2}]
    with pytest.raises(BlobError, match=rf"blob 'rows.jsonl' in container '{container}' line 3: not valid JSON"):
        next(rows)


def test_duplicate_ids_and_a_missing_id_column_are_named(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "dup.csv", "id,x\n1,a\n1,b\n")
    source = build(
        AzureBlobDataSource,
        container=container,
        blob="dup.csv",
        id_column="id",
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    with pytest.raises(BlobError, match="line 3: duplicate id '1' in 'id'"):
        list(source.load(plugin_context).rows)
    source = build(
        AzureBlobDataSource,
        container=container,
        blob="dup.csv",
        id_column="key",
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    with pytest.raises(BlobError, match=r"id_column 'key' is not a column of blob 'dup.csv'.*\(columns: id, x\)"):
        source.load(plugin_context)


def test_an_empty_blob_is_reported(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "empty.csv", b"")
    source = build(
        AzureBlobDataSource, container=container, blob="empty.csv", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    with pytest.raises(BlobError, match=r"blob 'empty.csv' .* is empty"):
        source.load(plugin_context)


def test_jsonl_rows_all_have_the_columns_in_order_and_an_unknown_key_is_named(
    service: Any, container: str, azure_env: dict[str, str], plugin_context: PluginContext
) -> None:
    put(service, container, "mixed.jsonl", '{"id": 1, "a": "x"}\n{"a": "y", "id": 2}\n{"id": 3}\n')
    source = build(
        AzureBlobDataSource, container=container, blob="mixed.jsonl", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    _, rows = read(source, plugin_context)
    assert [list(r.data.items()) for r in rows] == [
        [("id", 1), ("a", "x")],
        [("id", 2), ("a", "y")],
        [("id", 3), ("a", None)],
    ]
    put(service, container, "wider.jsonl", '{"id": 1}\n{"id": 2, "b": true}\n')
    narrow = build(
        AzureBlobDataSource, container=container, blob="wider.jsonl", connection_string_env="TEST_AZURITE_CONNECTION"
    )
    with pytest.raises(BlobError, match=r"line 2: key 'b' is not among the columns \(id\); list every column"):
        list(narrow.load(plugin_context).rows)
    declared = build(
        AzureBlobDataSource,
        container=container,
        blob="wider.jsonl",
        columns=["id", "b"],
        connection_string_env="TEST_AZURITE_CONNECTION",
    )
    table, rows = read(declared, plugin_context)
    assert table.columns == ["id", "b"]
    assert [dict(r.data) for r in rows] == [{"id": 1, "b": None}, {"id": 2, "b": True}]
