"""Sink ``azure_blob``: a run's results, summary and every file its other sinks wrote, uploaded under one prefix.

The manifest, listing every blob with its size and SHA-256, goes last, so its presence means the
upload is complete. Like ``signed``, the sink writes after every ordinary sink, and after ``signed``
too (it declares ``after = ("*", "signed")``), so a signed bundle is uploaded with the files it signs.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import string
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from elspeth import Artifact, PluginContext, RunResult, jsonl_lines, reported_artifacts, to_json
from elspeth_azure_blob._errors import BlobError
from elspeth_azure_blob._options import AuthOptions

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from elspeth_azure_blob._client import Connection

__all__ = ["AzureBlobSink", "BlobArtifact"]

_MiB = 1024 * 1024
_PLACEHOLDERS = {"run_id", "name"}
_METADATA_KEY_CHARS = set(string.ascii_letters + string.digits + "_")


@dataclass(frozen=True, slots=True)
class BlobArtifact(Artifact):
    """A blob the sink uploaded; the run lists it (and the CLI shows it) by ``url``.

    Attributes:
        path: the container and the blob's name, as a relative path; not a local file.
        url: the blob's URL (without any SAS token).

    """

    url: str


@dataclass
class _Spooled:
    """A file to upload, already on disk, with its size and SHA-256; ``file`` is its path in the output folder."""

    blob: str
    path: Path
    size: int
    sha256: str
    content_type: str
    file: str | None = None


def _spool(lines: Iterator[str], folder: Path, blob: str, content_type: str) -> _Spooled:
    """Write ``lines`` to a temporary file, hashing as it goes, so nothing is held in memory twice."""
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
    path = Path(name)
    with os.fdopen(fd, "wb") as handle:
        for line in lines:
            data = line.encode("utf-8")
            digest.update(data)
            size += len(data)
            handle.write(data)
    return _Spooled(blob, path, size, digest.hexdigest(), content_type)


def _hash_file(path: Path, blob: str, content_type: str, file: str) -> _Spooled:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_MiB):
            digest.update(chunk)
            size += len(chunk)
    return _Spooled(blob, path, size, digest.hexdigest(), content_type, file)


def _content_type(path: Path) -> str:
    import mimetypes

    known = {".jsonl": "application/jsonl", ".csv": "text/csv", ".json": "application/json"}
    return known.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class _Progress:
    """Logs an upload's progress at most once per tenth of it, and once at the end."""

    def __init__(self, log: Callable[..., None], where: str, total: int) -> None:
        self.log, self.where, self.total = log, where, total
        self.next_mark = total // 10

    def __call__(self, current: int, total: int | None) -> None:
        total = total or self.total
        if total and (current >= self.next_mark or current >= total):
            self.log(
                "uploaded %.1f of %.1f MB (%d%%) to %s", current / 1e6, total / 1e6, 100 * current // total, self.where
            )
            self.next_mark = current + max(total // 10, 1)


class AzureBlobSink:
    """Uploads a run's results (JSON Lines), summary, every file its other sinks wrote, and a manifest."""

    name = "azure_blob"
    after: ClassVar[tuple[str, ...]] = ("*", "signed")
    """Written after every other sink, ``signed`` included, so that it uploads everything they wrote."""

    class Options(AuthOptions):
        """Options of the ``azure_blob`` sink."""

        container: str = Field(description="the container to upload into")
        prefix: str = Field(
            "{name}/{run_id}/", description="folder of the run's blobs; {run_id} and {name} are replaced"
        )
        results_name: str = Field("results.jsonl", description="blob name (under the prefix) of the results")
        include_failures: bool = Field(True, description="write failed rows into the results too, status 'failed'")
        summary_name: str | None = Field(
            "summary.json", description="blob name of the run's metadata and aggregates; null to skip"
        )
        manifest_name: str = Field("manifest.json", description="blob name of the manifest, uploaded last")
        include_run_artifacts: bool = Field(
            True,
            description="upload every file the run's other sinks wrote (a signed bundle included); "
            "false uploads only the results, the summary, the `files` matches and the manifest",
        )
        files: list[str] = Field(
            default_factory=list,
            description="more files to upload: glob patterns relative to the output folder",
        )
        output_folder: str = Field(
            "output/",
            description="folder, under the prefix, for the files from the output folder (the run's artifacts and "
            "the `files` matches), which keep their paths relative to the output folder; '' puts them beside "
            "the results",
        )
        overwrite: bool = Field(
            True, description="replace blobs that already exist (a resumed run writes again); false makes it an error"
        )
        create_container: bool = Field(False, description="create the container if it does not exist")
        metadata: dict[str, str] = Field(default_factory=dict, description="extra metadata set on every blob")
        max_block_size: int = Field(
            4 * _MiB,
            ge=64 * 1024,
            le=4000 * _MiB,
            description="bytes per block; larger blobs are uploaded as a list of blocks",
        )
        max_concurrency: int = Field(4, ge=1, le=64, description="blocks uploaded in parallel")

        @field_validator("prefix")
        @classmethod
        def _known_placeholders(cls, value: str) -> str:
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
            except ValueError as exc:
                raise ValueError(f"prefix '{value}' is not a valid template: {exc}") from None
            unknown = fields - _PLACEHOLDERS
            if unknown:
                raise ValueError(f"prefix may use {{run_id}} and {{name}} only, not {{{', '.join(sorted(unknown))}}}")
            return value

        @field_validator("output_folder")
        @classmethod
        def _plain_folder(cls, value: str) -> str:
            parts = PurePosixPath(value).parts
            if value.startswith("/") or "\\" in value or ".." in parts:
                raise ValueError(f"output_folder '{value}' must be a relative folder name, without '..'")
            return "/".join(parts) + "/" if parts else ""

        @field_validator("metadata")
        @classmethod
        def _metadata_keys(cls, value: dict[str, str]) -> dict[str, str]:
            for key in value:
                if not key or key[0].isdigit() or not set(key) <= _METADATA_KEY_CHARS:
                    raise ValueError(
                        f"metadata key '{key}' must be letters, digits and underscores (not first a digit)"
                    )
                if not value[key].isascii():
                    raise ValueError(f"metadata value of '{key}' must be ASCII text (an Azure limit)")
            return value

        @model_validator(mode="after")
        def _check_account(self) -> Self:
            self.check_endpoint(self.endpoint())
            return self

    def __init__(self, options: Options) -> None:
        self.options = options
        options.credentials()  # fail at start-up, not after the run, when the secret's variable is missing

    def blob_prefix(self, result: RunResult) -> str:
        """The prefix for this run, placeholders filled in."""
        meta = result.metadata
        return self.options.prefix.format(run_id=meta.run_id, name=meta.name)

    def write(self, result: RunResult, ctx: PluginContext) -> list[BlobArtifact]:
        """Upload the results, the summary and every file of the run, then the manifest listing them.

        Every blob carries metadata ``run_id``, ``security_level`` and ``sha256``.

        Returns:
            One :class:`BlobArtifact` per uploaded blob, the manifest last.

        Raises:
            BlobError: storage refused or failed an upload, or a file the run reported is missing or
                lies outside the output folder; the message names the blob or the file.

        """
        from elspeth_azure_blob._client import connect

        opts = self.options
        with connect(opts, opts.endpoint(), block_size=opts.max_block_size) as conn:
            container = conn.client.get_container_client(opts.container)
            self._ensure_container(conn, container)
            prefix = self.blob_prefix(result)
            level = str(result.metadata.security_level or ctx.security_level)
            metadata = {**opts.metadata, "run_id": result.metadata.run_id, "security_level": level}
            with tempfile.TemporaryDirectory(prefix="elspeth-azure-blob-") as tmp:
                items = self._collect(result, ctx, Path(tmp), prefix)
                uploaded: list[dict[str, Any]] = []
                for item in items:
                    self._upload(conn, container, item, metadata, ctx)
                    entry: dict[str, Any] = {"blob": item.blob, "size": item.size, "sha256": item.sha256}
                    entry["content_type"] = item.content_type
                    if item.file is not None:
                        entry["file"] = item.file  # where it came from in the output folder
                    uploaded.append(entry)
                body = self._manifest(result, level, conn.account_url, prefix, uploaded)
                manifest_item = _spool(iter([body]), Path(tmp), prefix + opts.manifest_name, "application/json")
                self._upload(conn, container, manifest_item, metadata, ctx)
        artifacts = [
            BlobArtifact(
                Path(opts.container, item.blob),
                item.content_type,
                self.name,
                f"{conn.account_url}/{quote(opts.container)}/{quote(item.blob)}",
            )
            for item in [*items, manifest_item]
        ]
        total = sum(b["size"] for b in uploaded)
        ctx.logger.info(
            "uploaded %d blobs (%d bytes) and %s to %s/%s",
            len(uploaded),
            total,
            opts.manifest_name,
            conn.account_url,
            opts.container + "/" + prefix,
        )
        return artifacts

    def _manifest(
        self, result: RunResult, level: str, account_url: str, prefix: str, uploaded: list[dict[str, Any]]
    ) -> str:
        """The manifest blob's JSON text: the run, where its blobs are, and each blob's size and digest."""
        manifest = {
            "run_id": result.metadata.run_id,
            "name": result.metadata.name,
            "security_level": level,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "account_url": account_url,
            "container": self.options.container,
            "prefix": prefix,
            "blobs": uploaded,
        }
        return to_json(manifest, indent=2) + "\n"

    def _ensure_container(self, conn: Connection, container: ContainerClient) -> None:
        from azure.core.exceptions import ResourceExistsError

        from elspeth_azure_blob._client import translate

        try:
            if self.options.create_container:
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
            elif conn.credentials.kind != "sas_token":
                # a container-scoped SAS may not read container properties; its first upload tells instead
                container.get_container_properties()
        except Exception as exc:  # every SDK failure becomes a BlobError naming the container
            raise translate(exc, conn, action="checking", container=self.options.container) from None

    def _collect(self, result: RunResult, ctx: PluginContext, tmp: Path, prefix: str) -> list[_Spooled]:
        opts = self.options
        items = [
            _spool(jsonl_lines(result, opts.include_failures), tmp, prefix + opts.results_name, "application/jsonl")
        ]
        if opts.summary_name:
            summary = {
                "metadata": result.metadata.to_dict(),
                "aggregates": result.aggregates,
                "failures": len(result.failures),
            }
            items.append(
                _spool(iter([to_json(summary, indent=2) + "\n"]), tmp, prefix + opts.summary_name, "application/json")
            )
        items.extend(self._output_files(result, ctx, prefix))
        names = [i.blob for i in items] + [prefix + opts.manifest_name]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise BlobError(
                f"two artifacts would be uploaded as the same blob: {', '.join(clashes)}; "
                "set output_folder (or results_name, summary_name) so that they differ"
            )
        return items

    def _output_files(self, result: RunResult, ctx: PluginContext, prefix: str) -> list[_Spooled]:
        """The run's artifacts (unless ``include_run_artifacts`` is off), then the ``files`` matches, each once."""
        found: dict[Path, None] = {}
        root = ctx.output_dir.resolve()
        if self.options.include_run_artifacts:
            for path in self._run_artifacts(result, root):
                found.setdefault(path, None)
        for pattern in self.options.files:
            matches = sorted(p for p in root.glob(pattern) if p.is_file())
            if not matches:
                raise BlobError(f"files: '{pattern}' matches no file in the output folder {root}")
            for path in matches:
                found.setdefault(path.resolve(), None)
        folder = prefix + self.options.output_folder
        return [
            _hash_file(p, folder + p.relative_to(root).as_posix(), _content_type(p), p.relative_to(root).as_posix())
            for p in found
        ]

    @staticmethod
    def _run_artifacts(result: RunResult, root: Path) -> list[Path]:
        """The local files the run's other sinks reported, as the engine lists them in ``metadata.artifacts``."""
        paths, _already_remote = reported_artifacts(result)  # a blob an earlier upload listed by its URL stays
        for path in paths:
            if not path.is_relative_to(root):
                raise BlobError(
                    f"a sink of this run wrote {path}, outside the output folder {root}, so it has no place under "
                    "the prefix; write it inside the output folder, or set include_run_artifacts: false "
                    "(and name the files to upload in `files`)"
                )
            if not path.is_file():
                raise BlobError(f"a sink of this run reported {path} as written, but it is not there to upload")
        return paths

    def _upload(
        self,
        conn: Connection,
        container: ContainerClient,
        item: _Spooled,
        metadata: dict[str, str],
        ctx: PluginContext,
    ) -> None:
        from azure.storage.blob import ContentSettings

        from elspeth_azure_blob._client import translate

        opts = self.options
        where = f"{opts.container}/{item.blob}"
        blocks = max(1, math.ceil(item.size / opts.max_block_size))
        ctx.logger.info("uploading %s (%d bytes, %d block%s)", where, item.size, blocks, "" if blocks == 1 else "s")
        progress = _Progress(ctx.logger.info, where, item.size) if blocks > 1 else None
        try:
            with item.path.open("rb") as handle:
                container.upload_blob(
                    item.blob,
                    handle,
                    length=item.size,
                    overwrite=opts.overwrite,
                    metadata={**metadata, "sha256": item.sha256},
                    content_settings=ContentSettings(content_type=item.content_type),
                    max_concurrency=opts.max_concurrency,
                    progress_hook=progress,
                )
        except Exception as exc:  # every SDK failure becomes a BlobError naming the blob
            raise translate(exc, conn, action="uploading", container=opts.container, blob=item.blob) from None
