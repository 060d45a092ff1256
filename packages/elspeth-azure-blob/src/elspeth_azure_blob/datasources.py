"""Datasources ``azure_blob`` (CSV or JSON Lines) and ``csv_blob`` (CSV): rows streamed from one blob.

CSV is read by :class:`elspeth.csvread.CsvReader`, as the local ``csv`` datasource reads a file: the
encoding given or detected (``auto``), a malformed line aborting the load or skipped (counted, and
listed in the run's metadata), row ids from a column, the row number or a content hash, and declared
column types enforced with errors that name the line and column.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, model_validator

from elspeth import CsvOptions, CsvReader, PluginContext, Row, Table, choose_encoding, decode_error
from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob._options import AuthOptions, split_blob_url

if TYPE_CHECKING:
    from azure.storage.blob import StorageStreamDownloader

    from elspeth_azure_blob._client import Connection

__all__ = ["AzureBlobDataSource", "CsvBlobDataSource"]

_EXTENSIONS: dict[str, Literal["csv", "jsonl"]] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_CSV_ONLY = ("delimiter", "id_from", "on_malformed", "types", "empty_as_null", "allow_nul")
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


class _SourceOptions(AuthOptions, CsvOptions):
    """Where the blob is and how to read it; shared by both datasources."""

    container: str | None = Field(None, description="the container holding the blob")
    blob: str | None = Field(None, description="the blob's name within the container, e.g. inputs/reviews.csv")
    blob_url: str | None = Field(
        None, description="the blob's full URL instead of account_url + container + blob (no SAS token in it)"
    )
    columns: list[str] | None = Field(
        None,
        description="JSON Lines only: the columns, in order (default: the first object's keys); "
        "a key missing from a line is null",
    )
    check_before_run: bool = Field(
        True,
        description="read the whole blob once when the run starts, so that a malformed line, a bad id or a bad "
        "value stops the run (and `elspeth validate`) before any row is processed; false reads the blob only "
        "once, as the run goes, and such a problem stops the run where it is found",
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
        self._etag: str | None = None
        self._source = ""
        self._size = 0
        self._encoding = options.encoding
        self._csv: CsvReader | None = None

    def _where(self) -> str:
        return f"blob '{self.blob}' in container '{self.container}'"

    def summary(self) -> dict[str, Any]:
        """The encoding used and, for CSV, the malformed lines skipped (first 1,000 listed), like ``csv``'s.

        Example::

            {"encoding": "utf-8", "skipped": [{"line": 3, "reason": "expected 2 fields, found 3"}], "skipped_count": 1}

        """
        if self._csv is not None:
            return self._csv.summary()
        return {"encoding": self._encoding}

    def load(self, ctx: PluginContext) -> Table:
        """Learn the columns (checking the whole blob first, unless ``check_before_run`` is off); rows are streamed.

        Every read of the blob after the first asks for the same version of it (by its ETag), so
        rows never mix two versions: a blob replaced in between is an error naming it.
        """
        self._etag = None
        rows: Iterator[Row]
        if self.format == "csv":
            self._csv = reader = CsvReader(
                self.options, self._open, name=self._where(), logger=ctx.logger, error=BlobError
            )
            columns = reader.check() if self.options.check_before_run else reader.read_header()
            rows = reader.rows(columns, count_skips=not self.options.check_before_run)
        else:
            self._csv = None
            self._encoding = choose_encoding(
                self.options.encoding,
                self._open,
                name=self._where(),
                place=self._where(),
                logger=ctx.logger,
                error=BlobError,
            )
            columns = self._jsonl_header()
            if self.options.check_before_run:
                for _ in self._jsonl_rows(columns):
                    pass
            rows = self._jsonl_rows(columns)
        ctx.logger.info("reading %s from %s (%d bytes)", self.format, self._source, self._size)
        return Table(columns=columns, rows=rows, source=self._source)

    def open_partitioned(self, ctx: PluginContext) -> Table | None:
        """For a cluster executor: a CSV blob's header only, the rest as byte ranges read on the workers.

        None (the blob is then loaded here and its rows shipped in chunks) for JSON Lines and for CSV
        options that cannot be split (``encoding: auto``, UTF-16, ``id_from: content_hash``).
        """
        if self.format != "csv":
            return None
        from elspeth_azure_blob._ranges import partitioned_table

        return partitioned_table(self.options, self.account_url, self.container, self.blob, ctx)

    @contextmanager
    def _open(self) -> Iterator[IO[bytes]]:
        """The blob's bytes, streamed a chunk at a time; a read after the first asks for the same version."""
        from elspeth_azure_blob._client import connect, translate

        with connect(self.options, self.account_url, block_size=self.options.chunk_size) as conn:
            download = self._download(conn, self._etag)
            if self._etag is None:
                self._etag = download.properties.etag
                self._source = f"{conn.account_url}/{self.container}/{self.blob}"
                self._size = download.size
            try:
                with io.BufferedReader(_ChunkReader(download.chunks()), buffer_size=64 * 1024) as raw:
                    yield raw
            except Exception as exc:  # an SDK failure mid-stream: name the blob, hide the details
                if type(exc).__module__.startswith("azure."):
                    raise translate(exc, conn, action="reading", container=self.container, blob=self.blob) from None
                raise

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

    @contextmanager
    def _text(self) -> Iterator[io.TextIOWrapper]:
        with self._open() as raw, io.TextIOWrapper(raw, encoding=self._encoding, newline="") as text:
            try:
                yield text
            except UnicodeDecodeError:
                raise decode_error(
                    self._open,
                    self._encoding,
                    name=self._where(),
                    detected=self.options.encoding.lower() == "auto",
                    error=BlobError,
                ) from None

    def _jsonl_header(self) -> list[str]:
        with self._text() as text:
            header = self.options.columns or self._first_object_keys(text)
        if not header:
            raise BlobError(f"{self._where()} is empty: a JSONL blob needs a first line")
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

    def _jsonl_rows(self, columns: list[str]) -> Iterator[Row]:
        with self._text() as text:
            yield from self._with_ids(self._jsonl_records(text, columns))

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
        seen: dict[str, int] = {}
        for index, (line, data) in enumerate(records):
            if id_column is None:
                yield Row(str(index + 1), data, index)
                continue
            if id_column not in data or data[id_column] is None:
                raise BlobError(f"{self._where()} line {line}: no value for id_column '{id_column}'")
            row_id = str(data[id_column])
            if row_id in seen:
                first = seen[row_id]
                raise BlobError(
                    f"{self._where()} line {line}: duplicate id '{row_id}' in '{id_column}' (first on line {first})"
                )
            seen[row_id] = line
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
            if self.resolved_format() != "jsonl":
                if self.columns is not None:
                    raise ValueError("columns applies to JSON Lines only: a CSV blob's header names its columns")
                return self
            csv_only = [f for f in _CSV_ONLY if f in self.model_fields_set]
            if csv_only:
                raise ValueError(
                    f"{', '.join(csv_only)} appl{'ies' if len(csv_only) == 1 else 'y'} to CSV only; "
                    "JSON Lines rows keep their JSON types and are numbered unless id_column names their id"
                )
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
