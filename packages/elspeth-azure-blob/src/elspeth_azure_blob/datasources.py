"""Datasources ``azure_blob`` (CSV or JSON Lines) and ``csv_blob`` (CSV): rows streamed from one blob."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, model_validator

from elspeth.orchestration.context import PluginContext
from elspeth.types import Row, Table
from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob._options import AuthOptions, split_blob_url

if TYPE_CHECKING:
    from azure.storage.blob import StorageStreamDownloader

    from elspeth_azure_blob._client import Connection

__all__ = ["AzureBlobDataSource", "CsvBlobDataSource"]

_EXTENSIONS: dict[str, Literal["csv", "jsonl"]] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_MiB = 1024 * 1024


class _ChunkReader(io.RawIOBase):
    """A read-only byte stream over the download's chunks: one chunk is held at a time, never the whole blob."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _SourceOptions(AuthOptions):
    """Where the blob is; shared by both datasources."""

    container: str | None = Field(None, description="the container holding the blob")
    blob: str | None = Field(None, description="the blob's name within the container, e.g. inputs/reviews.csv")
    blob_url: str | None = Field(
        None, description="the blob's full URL instead of account_url + container + blob (no SAS token in it)"
    )
    encoding: str = Field("utf-8-sig", description="text encoding of the blob")
    id_column: str | None = Field(None, description="column whose values are the row ids (default: row number)")
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field separator")
    columns: list[str] | None = Field(
        None,
        description="JSON Lines only: the columns, in order (default: the first object's keys); "
        "a key missing from a line is null",
    )
    chunk_size: int = Field(
        4 * _MiB, ge=64 * 1024, le=256 * _MiB, description="bytes fetched per request while streaming the blob"
    )

    @model_validator(mode="after")
    def _check_place(self) -> Self:
        if self.blob_url:
            if self.container or self.blob:
                raise ValueError("give either blob_url or container + blob, not both")
            address = split_blob_url(self.blob_url)
            if self.account_url and self.account_url.rstrip("/") != address.account_url:
                raise ValueError(f"account_url {self.account_url} differs from blob_url's {address.account_url}")
            self.check_endpoint(address.account_url)
        else:
            if not (self.container and self.blob):
                raise ValueError("set container and blob (or blob_url)")
            self.check_endpoint(self.endpoint())
        return self

    def place(self) -> tuple[str | None, str, str]:
        """Account URL (None when the connection string gives it), container and blob."""
        if self.blob_url:
            address = split_blob_url(self.blob_url)
            return address.account_url, address.container, address.blob
        assert self.container
        assert self.blob
        return self.endpoint(), self.container, self.blob


class _BlobSource:
    """What both datasources share: streaming one blob and parsing it as CSV or JSON Lines."""

    def __init__(self, options: _SourceOptions, fmt: Literal["csv", "jsonl"]) -> None:
        self.options = options
        self.format = fmt
        self.account_url, self.container, self.blob = options.place()
        options.credentials()  # fail at start-up, not mid-run, when the secret's variable is missing

    def _where(self) -> str:
        return f"blob '{self.blob}' in container '{self.container}'"

    def load(self, ctx: PluginContext) -> Table:
        """Read the first line now to learn the columns; rows are streamed lazily as the run takes them."""
        from elspeth_azure_blob._client import connect

        with connect(self.options, self.account_url, block_size=self.options.chunk_size) as conn:
            download = self._download(conn, etag=None)
            etag = download.properties.etag
            with self._text(download) as text:
                columns = self._header(text)
            source = f"{conn.account_url}/{self.container}/{self.blob}"
        ctx.logger.info("reading %s from %s (%d bytes)", self.format, source, download.size)
        return Table(columns=columns, rows=self._rows(etag, columns), source=source)

    def _download(self, conn: Connection, etag: str | None) -> StorageStreamDownloader[bytes]:
        from azure.core import MatchConditions

        from elspeth_azure_blob._client import translate

        condition: dict[str, Any] = {}
        if etag is not None:
            # the rows must come from the same version of the blob as the columns did
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            return conn.client.get_blob_client(self.container, self.blob).download_blob(**condition)
        except Exception as exc:  # every SDK failure becomes a BlobError naming the blob
            raise translate(exc, conn, action="reading", container=self.container, blob=self.blob) from None

    def _text(self, download: StorageStreamDownloader[bytes]) -> io.TextIOWrapper:
        raw = io.BufferedReader(_ChunkReader(download.chunks()), buffer_size=64 * 1024)
        try:
            return io.TextIOWrapper(raw, encoding=self.options.encoding, newline="")
        except LookupError:
            raise BlobError(f"unknown encoding '{self.options.encoding}' for {self._where()}") from None

    def _header(self, text: io.TextIOWrapper) -> list[str]:
        try:
            if self.format == "csv":
                header = next(csv.reader(text, delimiter=self.options.delimiter), None)
            else:
                header = self.options.columns or self._first_object_keys(text)
        except UnicodeDecodeError as exc:
            raise BlobError(f"{self._where()} is not valid {self.options.encoding} text: {exc.reason}") from None
        if not header:
            raise BlobError(f"{self._where()} is empty: a {self.format.upper()} blob needs a first line")
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise BlobError(f"{self._where()} has duplicate column names: {', '.join(duplicates)}")
        if self.options.id_column is not None and self.options.id_column not in header:
            raise BlobError(
                f"id_column '{self.options.id_column}' is not a column of {self._where()} "
                f"(columns: {', '.join(header)})"
            )
        return header

    def _first_object_keys(self, text: io.TextIOWrapper) -> list[str] | None:
        for number, line in enumerate(text, start=1):
            if line.strip():
                return list(self._parse_json_line(line, number))
        return None

    def _parse_json_line(self, line: str, number: int) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BlobError(f"{self._where()} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise BlobError(f"{self._where()} line {number}: expected a JSON object, found {type(value).__name__}")
        return value

    def _rows(self, etag: str, columns: list[str]) -> Iterator[Row]:
        from elspeth_azure_blob._client import connect, translate

        with (
            connect(self.options, self.account_url, block_size=self.options.chunk_size) as conn,
            self._text(self._download(conn, etag)) as text,
        ):
            try:
                records = (
                    self._csv_records(text, columns) if self.format == "csv" else self._jsonl_records(text, columns)
                )
                yield from self._with_ids(records)
            except UnicodeDecodeError as exc:
                raise BlobError(f"{self._where()} is not valid {self.options.encoding} text: {exc.reason}") from None
            except BlobError:
                raise
            except Exception as exc:  # an SDK failure mid-stream: name the blob, hide the details
                if type(exc).__module__.startswith("azure."):
                    raise translate(exc, conn, action="reading", container=self.container, blob=self.blob) from None
                raise

    def _csv_records(self, text: io.TextIOWrapper, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        reader = csv.reader(text, delimiter=self.options.delimiter)
        next(reader, None)
        width = len(columns)
        for values in reader:
            if not values:
                continue
            if len(values) != width:
                raise BlobError(f"{self._where()} line {reader.line_num}: expected {width} fields, found {len(values)}")
            yield reader.line_num, dict(zip(columns, values, strict=True))

    def _jsonl_records(self, text: io.TextIOWrapper, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        known = set(columns)
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            item = self._parse_json_line(line, number)
            extra = [k for k in item if k not in known]
            if extra:
                raise BlobError(
                    f"{self._where()} line {number}: key {', '.join(repr(k) for k in extra)} is not among the columns "
                    f"({', '.join(columns)}); list every column in the `columns` option"
                )
            # every row has every column, in order; a key a line leaves out is None
            yield number, {c: item.get(c) for c in columns}

    def _with_ids(self, records: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[Row]:
        id_column = self.options.id_column
        seen: set[str] = set()
        for index, (line, data) in enumerate(records):
            if id_column is None:
                yield Row(str(index + 1), data, index)
                continue
            if id_column not in data or data[id_column] is None:
                raise BlobError(f"{self._where()} line {line}: no value for id_column '{id_column}'")
            row_id = str(data[id_column])
            if row_id in seen:
                raise BlobError(f"{self._where()} line {line}: duplicate id '{row_id}' in '{id_column}'")
            seen.add(row_id)
            yield Row(row_id, data, index)


class AzureBlobDataSource(_BlobSource):
    """Rows from a CSV or JSON Lines blob in Azure Blob Storage, streamed as the run reads them."""

    name = "azure_blob"

    class Options(_SourceOptions):
        """Options of the ``azure_blob`` datasource."""

        format: Literal["auto", "csv", "jsonl"] = Field(
            "auto", description="csv or jsonl; auto picks by the blob name's extension (.csv, .jsonl, .ndjson)"
        )

        @model_validator(mode="after")
        def _check_format(self) -> Self:
            if self.resolved_format() != "jsonl" and self.columns is not None:
                raise ValueError("columns applies to JSON Lines only: a CSV blob's header names its columns")
            return self

        def resolved_format(self) -> Literal["csv", "jsonl"]:
            """The format to read: the option, or the one the blob's extension names."""
            if self.format != "auto":
                return self.format
            _, _, blob = self.place()
            for ext, fmt in _EXTENSIONS.items():
                if blob.lower().endswith(ext):
                    return fmt
            raise ValueError(f"cannot tell the format of blob '{blob}' from its name; set format: csv or format: jsonl")

    def __init__(self, options: Options) -> None:
        super().__init__(options, options.resolved_format())


class CsvBlobDataSource(_BlobSource):
    """Rows from a CSV blob (with a header line) in Azure Blob Storage, streamed as the run reads them."""

    name = "csv_blob"

    class Options(_SourceOptions):
        """Options of the ``csv_blob`` datasource."""

        @model_validator(mode="after")
        def _no_columns(self) -> Self:
            if self.columns is not None:
                raise ValueError("columns applies to JSON Lines only: a CSV blob's header names its columns")
            return self

    def __init__(self, options: Options) -> None:
        super().__init__(options, "csv")
