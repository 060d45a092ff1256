"""The ``signed`` sink: the results in a bundle folder with an HMAC-signed manifest.

The bundle holds ``records.jsonl``, ``failures.jsonl``, ``metadata.json``, ``aggregates.json`` and
``manifest.json``. The manifest lists each of those files, and (with ``include_run_artifacts``)
every file the run's other sinks wrote, with its SHA-256 and size, and the run's security level;
see :mod:`elspeth_signed.signing` for its layout and exactly which bytes are signed. ``elspeth verify``
checks a bundle.

Wherever it stands in the settings' ``sinks`` list, the signed sink writes after every sink that
declares no ``after`` (it declares ``after = ("*",)``; see docs/plugin-authors.md), so no file of
the run is left out of the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elspeth import (
    Artifact,
    DeclaredPath,
    ElspethError,
    RunResult,
    output_target,
    reported_artifacts,
    to_json,
    write_atomically,
)
from elspeth_signed.signing import (
    DEFAULT_KEY_ENV,
    MANIFEST_NAME,
    build_manifest,
    ignored_by,
    is_database,
    signing_key,
    unlisted_beside,
)

if TYPE_CHECKING:
    from elspeth import PluginContext

__all__ = ["SignedSink"]

_BUNDLE_FILES = ("records.jsonl", "failures.jsonl", "metadata.json", "aggregates.json")


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


class SignedSink:
    """Results and a manifest signed with an HMAC, so that any change to the files can be detected."""

    name = "signed"
    after: ClassVar[tuple[str, ...]] = ("*",)
    """Written after every sink that declares no ``after``, so that it signs what they all wrote."""

    class Options(BaseModel):
        """Options of the ``signed`` sink."""

        model_config = ConfigDict(extra="forbid")

        path: str = Field("signed", description="the bundle folder, relative to the output folder")
        algorithm: Literal["hmac-sha256", "hmac-sha512"] = Field("hmac-sha256", description="the manifest's HMAC")
        key_env: str = Field(DEFAULT_KEY_ENV, min_length=1, description="environment variable holding the key")
        include_run_artifacts: bool = Field(
            True, description="also list every file the run's other sinks wrote (and the `files` globs)"
        )
        files: list[str] = Field(
            default_factory=list, description="more files to list: globs relative to the output folder"
        )

        @field_validator("path", "files")
        @classmethod
        def _relative(cls, value: Any) -> Any:
            for item in [value] if isinstance(value, str) else value:
                if Path(item).is_absolute() or ".." in Path(item).parts:
                    raise ValueError(f"'{item}' must be relative to the output folder, without '..'")
            return value

    def __init__(self, options: Options) -> None:
        self.options = options
        # read now, so that a missing key stops the run before any row is processed
        self._key = signing_key(options.key_env)

    def output_paths(self, ctx: PluginContext) -> list[DeclaredPath]:
        """The bundle's files and its manifest."""
        bundle = output_target(ctx, self.options.path)
        return [DeclaredPath("path", bundle / name) for name in [*_BUNDLE_FILES, MANIFEST_NAME]]

    def write(self, result: RunResult, ctx: PluginContext) -> list[Artifact]:
        """Write the bundle's files, then the signed manifest over them and the run's other artifacts."""
        root = ctx.output_dir.resolve()
        bundle = (root / self.options.path).resolve()
        bundle.mkdir(parents=True, exist_ok=True)
        others = self._run_artifacts(result, ctx, root) if self.options.include_run_artifacts else []
        others = [p for p in others if p != bundle / MANIFEST_NAME]  # a manifest cannot list itself
        own = [bundle / name for name in _BUNDLE_FILES]
        self._refuse_strangers(bundle, {*own, *others, bundle / MANIFEST_NAME})

        item: dict[str, Any]
        records: list[str] = []
        for r in result.records:
            item = {"row_id": r.row_id, "experiment": r.group, "inputs": r.inputs, "outputs": r.outputs}
            records.append(to_json(item | {"metrics": r.metrics}))
        failures: list[str] = []
        for f in result.failures:
            item = {"row_id": f.row_id, "experiment": f.group, "inputs": f.inputs, "stage": f.stage}
            failures.append(to_json(item | {"error": f.error, "attempts": f.attempts, "outputs": f.output}))
        contents: dict[str, Callable[[IO[str]], None]] = {
            "records.jsonl": lambda h: h.writelines(line + "\n" for line in records),
            "failures.jsonl": lambda h: h.writelines(line + "\n" for line in failures),
            "metadata.json": lambda h: h.writelines([to_json(result.metadata.to_dict(), indent=2), "\n"]),
            "aggregates.json": lambda h: h.writelines([to_json(result.aggregates, indent=2), "\n"]),
        }
        for name, dump in contents.items():
            write_atomically(bundle / name, dump)

        manifest = build_manifest(
            root,
            bundle,
            [*own, *others],
            key=self._key,
            algorithm=self.options.algorithm,
            key_env=self.options.key_env,
            run_id=result.metadata.run_id,
            name=result.metadata.name,
            security_level=str(result.metadata.security_level or ctx.security_level),
        )
        write_atomically(
            bundle / MANIFEST_NAME,
            lambda h: h.writelines([json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False), "\n"]),
        )
        self._warn_strangers(root, bundle, manifest, ctx)
        media = {".jsonl": "application/jsonl", ".json": "application/json"}
        return [Artifact(p, media[p.suffix], self.name) for p in [*own, bundle / MANIFEST_NAME]]

    def _run_artifacts(self, result: RunResult, ctx: PluginContext, root: Path) -> list[Path]:
        """Files earlier sinks reported, every file the run wrote through ``ctx.output_path``, and the ``files`` globs.

        The engine fills ``metadata.artifacts`` as each sink finishes, so a later sink sees them.
        """
        found: dict[Path, None] = {}
        local, remote = reported_artifacts(result)
        for url in remote:  # an uploaded blob, listed by its URL: no local file to hash
            ctx.logger.warning("sink 'signed': %s is not a local file; it is not listed in the manifest", url)
        for path in local:
            if not _is_within(path, root):
                raise ElspethError(
                    f"an earlier sink wrote {path}, outside the output folder {root}; the manifest can only "
                    "list files inside it (set include_run_artifacts: false to sign only the bundle)"
                )
            if not path.is_file():
                raise ElspethError(f"an earlier sink reported {path} as written, but it is not there to sign")
            found[path] = None
        # what the run wrote without a sink reporting it (the audit trail): databases are ``ignored`` instead
        for path in sorted(ctx.written):
            if path.is_file() and _is_within(path, root) and not is_database(path):
                found[path] = None
        for pattern in self.options.files:
            matches = sorted(p.resolve() for p in root.glob(pattern) if p.is_file())
            if not matches:
                ctx.logger.warning("sink 'signed': files pattern '%s' matched nothing in %s", pattern, root)
            for path in matches:
                if _is_within(path, root):
                    found[path] = None
        return list(found)

    @staticmethod
    def _warn_strangers(root: Path, bundle: Path, manifest: dict[str, Any], ctx: PluginContext) -> None:
        """Say which unlisted files lie beside the signed ones: ``elspeth verify`` will report them as added."""
        listed = [str(entry["path"]) for entry in manifest["files"]]
        ignored = set(manifest["ignored"])
        strangers = [rel for rel in unlisted_beside(root, bundle, listed) if not ignored_by(rel, ignored)]
        if strangers:
            ctx.logger.warning(
                "sink 'signed': %s lie beside signed files but no sink of this run wrote them; "
                "`elspeth verify` will report them as ADDED: add them to `files` to sign them, or remove them",
                ", ".join(strangers[:10]) + (f" and {len(strangers) - 10} more" if len(strangers) > 10 else ""),
            )

    @staticmethod
    def _refuse_strangers(bundle: Path, expected: set[Path]) -> None:
        """Refuse to sign a bundle folder that holds files this run did not write: they would look verified."""
        strangers = sorted(p for p in bundle.rglob("*") if p.is_file() and p.resolve() not in expected)
        if strangers:
            names = ", ".join(p.relative_to(bundle).as_posix() for p in strangers[:10])
            raise ElspethError(
                f"the bundle folder {bundle} holds files this run did not write ({names}); "
                "empty it or set another `path` for the signed sink"
            )
