"""A CSV blob as byte-range partitions, read by ranged GETs where each partition is processed.

The splitting is core's (:class:`elspeth.CsvPartitions`: quoted newlines, record numbers and line
numbers as in the whole input); this module only gives it the blob's bytes by ranges
(:class:`BlobRanges`). Every range is read from the version of the blob whose header the client
read (its ETag), so partitions never mix two versions; the credentials are read from the
environment of the process that reads (each worker's), never shipped with the partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elspeth import CsvPartitions, CsvReader, Table, open_ranges, splittable
from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob._options import AuthOptions

if TYPE_CHECKING:
    from elspeth import CsvOptions, PluginContext

__all__ = ["BlobRanges", "partitioned_table"]


@dataclass(frozen=True)
class BlobRanges:
    """One version of a blob, read by byte ranges: picklable (options name environment variables, not secrets)."""

    options: AuthOptions
    account_url: str | None
    container: str
    blob: str
    etag: str
    length: int

    @property
    def name(self) -> str:
        """The blob as messages name it (as a read of the whole blob does)."""
        return f"blob '{self.blob}' in container '{self.container}'"

    def size(self) -> int:
        """The blob's length, as the client found it."""
        return self.length

    def read_range(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` in one ranged GET, of the same version of the blob (or a BlobError)."""
        from azure.core import MatchConditions

        from elspeth_azure_blob._client import connect, translate

        with connect(self.options, self.account_url) as conn:
            client = conn.client.get_blob_client(self.container, self.blob)
            try:
                download = client.download_blob(
                    offset=start, length=end - start, etag=self.etag, match_condition=MatchConditions.IfNotModified
                )
                data: bytes = download.readall()
            except Exception as exc:  # every SDK failure becomes a BlobError naming the blob, never the secret
                raise translate(exc, conn, action="reading", container=self.container, blob=self.blob) from None
        return data


def blob_ranges(options: AuthOptions, account_url: str | None, container: str, blob: str) -> BlobRanges:
    """The blob's current version and length (one properties request)."""
    from elspeth_azure_blob._client import connect, translate

    with connect(options, account_url) as conn:
        try:
            props: Any = conn.client.get_blob_client(container, blob).get_blob_properties()
        except Exception as exc:
            raise translate(exc, conn, action="reading", container=container, blob=blob) from None
        return BlobRanges(options, conn.account_url, container, blob, props.etag, props.size)


def partitioned_table(
    options: Any, account_url: str | None, container: str, blob: str, ctx: PluginContext
) -> Table | None:
    """The header read here and the rest as byte-range partitions; None when ``options`` cannot be split.

    Raises:
        BlobError: the blob cannot be read, or its header is bad (as for a whole read).
    """
    csv_options: CsvOptions = options
    why = splittable(csv_options)
    ranges = blob_ranges(options, account_url, container, blob)
    if why is not None:
        ctx.logger.info("%s is read on the client and shipped in chunks: %s", ranges.name, why)
        return None
    reader = CsvReader(csv_options, lambda: open_ranges(ranges), name=ranges.name, logger=ctx.logger, error=BlobError)
    header = reader.read_header()
    rows = CsvPartitions(Path(blob), csv_options, header, encoding=reader.encoding, ranges=ranges)
    source = f"{ranges.account_url}/{container}/{blob}"
    ctx.logger.info("reading csv from %s (%d bytes) in partitions", source, ranges.length)
    return Table(columns=list(header), rows=rows, source=source)
