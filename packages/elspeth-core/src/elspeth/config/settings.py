"""The settings file: one YAML document validated by pydantic, each plugin reference by its own ``Options``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from elspeth.config._secret_shapes import SECRET_KEYS as SECRET_KEYS  # re-exported: the audit logger uses it
from elspeth.config._secret_shapes import find_secrets
from elspeth.config._yaml import Checker, SourceMap, load_yaml_file, load_yaml_text
from elspeth.endpoints import check_endpoint_entry
from elspeth.errors import ConfigError
from elspeth.orchestration.retry import RetryPolicy
from elspeth.security import SecurityLevel, parse_level

__all__ = ["LoadedSettings", "PluginRef", "Prompts", "Settings", "load_settings", "load_settings_text"]


class PluginRef(BaseModel):
    """A reference to a plugin: ``{plugin: NAME, options: {...}}``, or a bare ``NAME``."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="the plugin's name in its domain")
    options: dict[str, Any] = Field(default_factory=dict, description="validated by the plugin's Options")
    security_level: SecurityLevel | None = Field(
        None,
        description="for a datasource, its data's level; for a client, middleware or sink, its clearance",
    )

    @field_validator("security_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> SecurityLevel | None:
        return None if value is None else parse_level(value)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"plugin": value}
        if isinstance(value, Mapping) and value.get("options") is None and "options" in value:
            return {**value, "options": {}}
        return value


class Prompts(BaseModel):
    """Jinja2 templates rendered per row, with the row's columns as variables."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field("", description="system prompt template")
    user: str = Field(description="user prompt template")


class BatchAPISettings(BaseModel):
    """Sending the run's LLM calls through the provider's batch API (half price, answers within 24 h)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="send calls through the llm client's batch API (docs/batch-api.md)")
    poll_interval_s: float = Field(30.0, gt=0, description="seconds between polls of the submitted batches")
    gather_s: float = Field(1.0, gt=0, description="seconds without a new call before the gathered ones are sent")
    retry_live: bool = Field(False, description="retry items that failed or expired in a batch through the live API")


class StoreSettings(BaseModel):
    """Where the run store keeps finished rows (for resume and history)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="record every finished row so the run can resume")
    path: str | None = Field(
        None, description="the SQLite file, relative to the settings file (default: elspeth-runs.sqlite in output_dir)"
    )
    url: str | None = Field(
        None,
        description="a database server instead of the file: postgresql://user@host:5432/db (elspeth-store-postgres)",
    )

    @field_validator("url")
    @classmethod
    def _url_has_scheme_and_no_password(cls, url: str | None) -> str | None:
        from urllib.parse import urlsplit

        if url is None:
            return None
        parts = urlsplit(url)
        if not parts.scheme or "://" not in url:
            raise ValueError(f"{url!r} is not a URL like postgresql://user@host:5432/db")
        if parts.password is not None:  # the settings are kept in the store and reports: secrets never are
            raise ValueError(
                "the URL holds a password; leave it out and set it in the environment (PGPASSWORD) or ~/.pgpass"
            )
        return url

    @model_validator(mode="after")
    def _path_or_url(self) -> StoreSettings:
        if self.path is not None and self.url is not None:
            raise ValueError("give store.path (an SQLite file) or store.url (a database server), not both")
        return self


class Settings(BaseModel):
    """The whole settings file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("run", description="a name for the run, used in reports and file names")
    security_level: SecurityLevel | None = Field(
        None, description="the data's level at least (the datasource may raise it); every recipient must be cleared"
    )
    orchestrator: PluginRef = Field(description="the orchestration mode")
    datasource: PluginRef = Field(description="where rows come from")
    llm: PluginRef | None = Field(None, description="the LLM client, if the orchestrator calls one")
    middleware: list[PluginRef] = Field(default_factory=list, description="LLM middleware, outermost first")
    rate_limiter: PluginRef | None = None
    cost_tracker: PluginRef | None = None
    processors: list[PluginRef] = Field(default_factory=list, description="row processing before the orchestrator")
    utilities: list[PluginRef] = Field(default_factory=list)
    sinks: list[PluginRef] = Field(default_factory=list, description="where results go")
    observers: list[PluginRef] = Field(
        default_factory=list, description="live observers of the run (metrics, traces), see docs/observability.md"
    )
    prompts: Prompts | None = None
    concurrency: int = Field(8, ge=1, le=10_000, description="rows in flight at once")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="how LLM calls are retried")
    batch_api: BatchAPISettings = Field(
        default_factory=BatchAPISettings, description="send LLM calls through the provider's batch API"
    )
    executor: PluginRef | None = Field(
        None, description="where rows run: local (this process; null means local) or a cluster executor such as dask"
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="the run store: resume and history")
    allowed_endpoints: list[Annotated[str, AfterValidator(check_endpoint_entry)]] | None = Field(
        None,
        description="endpoints (http(s) URL prefixes) a run may call: LLM clients, middleware and utility services; "
        "null allows any",
    )
    output_dir: str = Field("output", description="where sinks write, relative to the settings file")

    @field_validator("security_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> SecurityLevel | None:
        return None if value is None else parse_level(value)


@dataclass
class LoadedSettings:
    """Validated settings with the file they came from, for error messages and relative paths."""

    settings: Settings
    raw: dict[str, Any]
    source_map: SourceMap
    path: Path | None
    base_dir: Path

    def checker(self) -> Checker:
        """A fresh problem collector for this file."""
        return Checker(self.source_map)

    @property
    def output_dir(self) -> Path:
        """The output directory, resolved against the settings file's folder."""
        return (self.base_dir / self.settings.output_dir).resolve()

    def digest(self) -> str:
        """SHA-256 of the settings as canonical JSON; a changed setting changes it."""
        blob = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def _validate(data: Any, source_map: SourceMap, path: Path | None, base_dir: Path) -> LoadedSettings:
    checker = Checker(source_map)
    if not isinstance(data, dict):
        checker.add((), "the settings file must be a YAML mapping (key: value pairs)")
        checker.raise_if_any()
    find_secrets(data, (), checker)  # by key name and by value shape, before anything else reads the file
    checker.raise_if_any()
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        checker.add_validation_error((), exc, Settings)
        checker.raise_if_any()
        raise  # unreachable: raise_if_any raised
    return LoadedSettings(settings, data, source_map, path, base_dir)


def load_settings(path: str | Path) -> LoadedSettings:
    """Load and validate a settings file (the plugin options are checked later, against the registry).

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the schema; every problem names its line.

    """
    path = Path(path)
    data, source_map = load_yaml_file(path)
    return _validate(data, source_map, path, path.resolve().parent)


def load_settings_text(text: str, *, base_dir: Path, file: str = "settings.yaml") -> LoadedSettings:
    """As :func:`load_settings`, from a string (for tests and embedding)."""
    data, source_map = load_yaml_text(text, file)
    return _validate(data, source_map, None, base_dir)


__all__ += ["ConfigError"]
