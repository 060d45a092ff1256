"""Elspeth: an orchestrator for work over tabular data that usually involves LLM calls.

This module is the public API for plugin authors. A plugin module imports what it needs from here::

    from elspeth import hookimpl, LLMRequest, LLMResponse

Heavier parts (templates, the run engine, discovery) load on first use, so that importing
``elspeth`` stays cheap for every plugin.

``__all__`` is the public API: every name in it is documented in docs/api.md and stable during 0.x
as docs/compatibility.md says. A name that is renamed or withdrawn stays reachable for one minor
release through ``_DEPRECATED``, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from elspeth.errors import (
    ConfigError,
    ElspethError,
    PluginError,
    Problem,
    ProcessorFailed,
    RunFailed,
    ValidationFailed,
)
from elspeth.hookspecs import hookimpl, hookspec
from elspeth.lazy import lazy_exports
from elspeth.registrars import ControlRegistrar, HookspecAdder, Registrar

if TYPE_CHECKING:
    from elspeth._sync import inline, invoke, iterate_rows
    from elspeth.config import LoadedSettings, PluginRef, Prompts, load_settings, load_settings_text
    from elspeth.config._yaml import Checker
    from elspeth.csvread import CsvOptions, CsvReader, choose_encoding, decode_error
    from elspeth.datatypes import (
        Artifact,
        Failure,
        LLMRequest,
        LLMResponse,
        Record,
        Row,
        RunMetadata,
        RunResult,
        Table,
        Usage,
        flatten,
        reported_artifacts,
    )
    from elspeth.discovery import PluginSource, builtin_sources, load_registry
    from elspeth.engine import run_settings
    from elspeth.estimating import PlannedCall
    from elspeth.files import DiskFull, disk_full, jsonl_lines, replace_file, to_json, write_atomically
    from elspeth.ledger import Ledger, Spend
    from elspeth.llm_errors import (
        LLMCallFailed,
        LLMConnectionError,
        LLMContentRefused,
        LLMError,
        LLMRateLimited,
        LLMRedirectRefused,
        LLMRequestRejected,
        LLMServerError,
        LLMTimeout,
        connection_failure,
        error_for_status,
        parse_retry_after,
        redirect_refused,
    )
    from elspeth.loop_bound import LoopBoundSDK
    from elspeth.network import is_loopback
    from elspeth.orchestration import (
        Cancel,
        LLMPipeline,
        NullProgress,
        OrchestrationContext,
        Progress,
        RowCounts,
        RowFailed,
        RowRunner,
        run_rows,
    )
    from elspeth.orchestration.fields import check_needed_fields
    from elspeth.orchestration.pipeline import key_identity
    from elspeth.orchestration.plugin_context import PluginContext
    from elspeth.orchestration.retry import RetryPolicy, retry_call
    from elspeth.orchestration.stall import reply_started
    from elspeth.orchestration.subplugins import close_plugins, keyed_plugins, open_plugins, plugin_summaries
    from elspeth.outcome import GateResult, RunOutcome
    from elspeth.outputs import DeclaredPath, ReadsFiles, WritesFiles, output_target
    from elspeth.partitions import Partition, Partitioned, ShippedResults, ShippedRows, shipped_chunks
    from elspeth.references import PluginReference
    from elspeth.registry import PluginInfo, Registry, Resolved
    from elspeth.remote import PartitionResult, RunSpec, run_partition
    from elspeth.scrub import install_log_scrubbing, register_secret, scrub_exception, scrub_secrets, secret_from_env
    from elspeth.spool import Spool, SpoolWriter
    from elspeth.spreadsheet import SanitizeOptions, neutralise_formula, warn_unsanitised
    from elspeth.store import RunStore, StoreError
    from elspeth.store_backends import open_store_url
    from elspeth.streams import Acknowledges, Malformed, StreamSink
    from elspeth.templates import PromptTemplate, TemplateError, check_template, compile_template
    from elspeth.totals import RunTotals

# the one place elspeth-core's version is written: hatchling and tools/versions.py read it
__version__ = "0.1.0"

_LAZY = {
    # light, but not needed by `elspeth --help` or by a plugin that never touches them
    "inline": "elspeth._sync",
    "invoke": "elspeth._sync",
    "iterate_rows": "elspeth._sync",
    "Artifact": "elspeth.datatypes",
    "Failure": "elspeth.datatypes",
    "LLMRequest": "elspeth.datatypes",
    "LLMResponse": "elspeth.datatypes",
    "Record": "elspeth.datatypes",
    "Row": "elspeth.datatypes",
    "RunMetadata": "elspeth.datatypes",
    "RunResult": "elspeth.datatypes",
    "Table": "elspeth.datatypes",
    "Usage": "elspeth.datatypes",
    "flatten": "elspeth.datatypes",
    "reported_artifacts": "elspeth.datatypes",
    "DiskFull": "elspeth.files",
    "disk_full": "elspeth.files",
    "replace_file": "elspeth.files",
    "GateResult": "elspeth.outcome",
    "RunOutcome": "elspeth.outcome",
    "DeclaredPath": "elspeth.outputs",
    "ReadsFiles": "elspeth.outputs",
    "WritesFiles": "elspeth.outputs",
    "output_target": "elspeth.outputs",
    "RunTotals": "elspeth.totals",
    "PlannedCall": "elspeth.estimating",
    "Partition": "elspeth.partitions",
    "Partitioned": "elspeth.partitions",
    "ShippedResults": "elspeth.partitions",
    "ShippedRows": "elspeth.partitions",
    "shipped_chunks": "elspeth.partitions",
    "PartitionResult": "elspeth.remote",
    "RunSpec": "elspeth.remote",
    "run_partition": "elspeth.remote",
    "is_loopback": "elspeth.network",
    "CsvOptions": "elspeth.csvread",
    "CsvReader": "elspeth.csvread",
    "choose_encoding": "elspeth.csvread",
    "decode_error": "elspeth.csvread",
    "LLMCallFailed": "elspeth.llm_errors",
    "LLMConnectionError": "elspeth.llm_errors",
    "connection_failure": "elspeth.llm_errors",
    "LLMContentRefused": "elspeth.llm_errors",
    "LLMError": "elspeth.llm_errors",
    "LLMRateLimited": "elspeth.llm_errors",
    "LLMRedirectRefused": "elspeth.llm_errors",
    "LLMRequestRejected": "elspeth.llm_errors",
    "LLMServerError": "elspeth.llm_errors",
    "LLMTimeout": "elspeth.llm_errors",
    "error_for_status": "elspeth.llm_errors",
    "parse_retry_after": "elspeth.llm_errors",
    "redirect_refused": "elspeth.llm_errors",
    "RetryPolicy": "elspeth.orchestration.retry",
    "retry_call": "elspeth.orchestration.retry",
    "reply_started": "elspeth.orchestration.stall",
    "key_identity": "elspeth.orchestration.pipeline",
    "LoopBoundSDK": "elspeth.loop_bound",
    "SanitizeOptions": "elspeth.spreadsheet",
    "neutralise_formula": "elspeth.spreadsheet",
    "warn_unsanitised": "elspeth.spreadsheet",
    "PluginSource": "elspeth.discovery",
    "builtin_sources": "elspeth.discovery",
    "load_settings_text": "elspeth.config",
    "run_settings": "elspeth.engine",
    "LoadedSettings": "elspeth.config",
    "PluginRef": "elspeth.config",
    "Prompts": "elspeth.config",
    "load_settings": "elspeth.config",
    "Checker": "elspeth.config._yaml",
    "check_needed_fields": "elspeth.orchestration.fields",
    "close_plugins": "elspeth.orchestration.subplugins",
    "keyed_plugins": "elspeth.orchestration.subplugins",
    "open_plugins": "elspeth.orchestration.subplugins",
    "plugin_summaries": "elspeth.orchestration.subplugins",
    "load_registry": "elspeth.discovery",
    "Ledger": "elspeth.ledger",
    "Spend": "elspeth.ledger",
    "RunStore": "elspeth.store",
    "StoreError": "elspeth.store",
    "open_store_url": "elspeth.store_backends",
    "Cancel": "elspeth.orchestration",
    "LLMPipeline": "elspeth.orchestration",
    "NullProgress": "elspeth.orchestration",
    "OrchestrationContext": "elspeth.orchestration",
    "PluginContext": "elspeth.orchestration.plugin_context",
    "Progress": "elspeth.orchestration",
    "RowCounts": "elspeth.orchestration",
    "RowFailed": "elspeth.orchestration",
    "RowRunner": "elspeth.orchestration",
    "run_rows": "elspeth.orchestration",
    "PluginInfo": "elspeth.registry",
    "PluginReference": "elspeth.references",
    "Registry": "elspeth.registry",
    "Resolved": "elspeth.registry",
    "install_log_scrubbing": "elspeth.scrub",
    "register_secret": "elspeth.scrub",
    "scrub_exception": "elspeth.scrub",
    "scrub_secrets": "elspeth.scrub",
    "secret_from_env": "elspeth.scrub",
    "Spool": "elspeth.spool",
    "Acknowledges": "elspeth.streams",
    "Malformed": "elspeth.streams",
    "StreamSink": "elspeth.streams",
    "SpoolWriter": "elspeth.spool",
    "jsonl_lines": "elspeth.files",
    "to_json": "elspeth.files",
    "write_atomically": "elspeth.files",
    "PromptTemplate": "elspeth.templates",
    "TemplateError": "elspeth.templates",
    "check_template": "elspeth.templates",
    "compile_template": "elspeth.templates",
}


# A name that left the API: old name -> (module, attribute, the release that removes it). It stays
# importable, with a DeprecationWarning naming what to use, for one minor release (docs/compatibility.md).
_DEPRECATED: dict[str, tuple[str, str, str]] = {}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _DEPRECATED:
        return _deprecated(name, *_DEPRECATED[name])
    raise AttributeError(f"module 'elspeth' has no attribute '{name}'")


def _deprecated(name: str, module: str, attribute: str, removed_in: str) -> Any:
    import warnings

    replacement = f"{module}.{attribute}" if module != "elspeth" else f"elspeth.{attribute}"
    warnings.warn(
        f"elspeth.{name} is deprecated and will be removed in elspeth-core {removed_in}; use {replacement}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(module), attribute)  # never cached: every use warns


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Acknowledges",
    "Artifact",
    "Cancel",
    "Checker",
    "ConfigError",
    "ControlRegistrar",
    "CsvOptions",
    "CsvReader",
    "DeclaredPath",
    "DiskFull",
    "ElspethError",
    "Failure",
    "GateResult",
    "HookspecAdder",
    "LLMCallFailed",
    "LLMConnectionError",
    "LLMContentRefused",
    "LLMError",
    "LLMPipeline",
    "LLMRateLimited",
    "LLMRedirectRefused",
    "LLMRequest",
    "LLMRequestRejected",
    "LLMResponse",
    "LLMServerError",
    "LLMTimeout",
    "Ledger",
    "LoadedSettings",
    "LoopBoundSDK",
    "Malformed",
    "NullProgress",
    "OrchestrationContext",
    "Partition",
    "PartitionResult",
    "Partitioned",
    "PlannedCall",
    "PluginContext",
    "PluginError",
    "PluginInfo",
    "PluginRef",
    "PluginReference",
    "PluginSource",
    "Problem",
    "ProcessorFailed",
    "Progress",
    "PromptTemplate",
    "Prompts",
    "ReadsFiles",
    "Record",
    "Registrar",
    "Registry",
    "Resolved",
    "RetryPolicy",
    "Row",
    "RowCounts",
    "RowFailed",
    "RowRunner",
    "RunFailed",
    "RunMetadata",
    "RunOutcome",
    "RunResult",
    "RunSpec",
    "RunStore",
    "RunTotals",
    "SanitizeOptions",
    "ShippedResults",
    "ShippedRows",
    "Spend",
    "Spool",
    "SpoolWriter",
    "StoreError",
    "StreamSink",
    "Table",
    "TemplateError",
    "Usage",
    "ValidationFailed",
    "WritesFiles",
    "builtin_sources",
    "check_needed_fields",
    "check_template",
    "choose_encoding",
    "close_plugins",
    "compile_template",
    "connection_failure",
    "decode_error",
    "disk_full",
    "error_for_status",
    "flatten",
    "hookimpl",
    "hookspec",
    "inline",
    "install_log_scrubbing",
    "invoke",
    "is_loopback",
    "iterate_rows",
    "jsonl_lines",
    "key_identity",
    "keyed_plugins",
    "lazy_exports",
    "load_registry",
    "load_settings",
    "load_settings_text",
    "neutralise_formula",
    "open_plugins",
    "open_store_url",
    "output_target",
    "parse_retry_after",
    "plugin_summaries",
    "redirect_refused",
    "register_secret",
    "replace_file",
    "reply_started",
    "reported_artifacts",
    "retry_call",
    "run_partition",
    "run_rows",
    "run_settings",
    "scrub_exception",
    "scrub_secrets",
    "secret_from_env",
    "shipped_chunks",
    "to_json",
    "warn_unsanitised",
    "write_atomically",
]
