"""Elspeth: an orchestrator for work over tabular data that usually involves LLM calls.

The public API for plugin authors; a plugin module imports what it needs from here::

    from elspeth import hookimpl, LLMRequest, LLMResponse

Heavier parts (templates, the run engine, discovery) load on first use: importing ``elspeth`` stays cheap.

``__all__`` is the public API: each name is in docs/api.md and stable during 0.x (docs/compatibility.md); a
name renamed or withdrawn stays reachable for one minor release through ``_DEPRECATED``, with a warning.
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
    from elspeth.batching import (
        BATCH_ID_KEY,
        BatchingClient,
        BatchItem,
        BatchLimits,
        BatchResult,
        BatchStatus,
        split_batches,
        supports_batching,
    )
    from elspeth.config import LoadedSettings, PluginRef, Prompts, load_settings, load_settings_text
    from elspeth.config._yaml import Checker
    from elspeth.csvread import CsvOptions, CsvReader, choose_encoding, decode_error
    from elspeth.csvsplit import ByteRanges, CsvPartitions, open_ranges, splittable
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

# each module and the public names it defines, loaded on first use (PEP 562): importing elspeth stays cheap
_BY_MODULE = {
    "elspeth.batching": (
        "BATCH_ID_KEY BatchItem BatchLimits BatchResult BatchStatus BatchingClient split_batches supports_batching"
    ),
    "elspeth._sync": "inline invoke iterate_rows",
    "elspeth.datatypes": (
        "Artifact Failure LLMRequest LLMResponse Record Row RunMetadata RunResult Table Usage flatten "
        "reported_artifacts"
    ),
    "elspeth.files": "DiskFull disk_full replace_file jsonl_lines to_json write_atomically",
    "elspeth.outcome": "GateResult RunOutcome",
    "elspeth.outputs": "DeclaredPath ReadsFiles WritesFiles output_target",
    "elspeth.totals": "RunTotals",
    "elspeth.estimating": "PlannedCall",
    "elspeth.partitions": "Partition Partitioned ShippedResults ShippedRows shipped_chunks",
    "elspeth.remote": "PartitionResult RunSpec run_partition",
    "elspeth.network": "is_loopback",
    "elspeth.csvread": "CsvOptions CsvReader choose_encoding decode_error",
    "elspeth.csvsplit": "ByteRanges CsvPartitions open_ranges splittable",
    "elspeth.llm_errors": (
        "LLMCallFailed LLMConnectionError connection_failure LLMContentRefused LLMError LLMRateLimited "
        "LLMRedirectRefused LLMRequestRejected LLMServerError LLMTimeout error_for_status parse_retry_after "
        "redirect_refused"
    ),
    "elspeth.orchestration.retry": "RetryPolicy retry_call",
    "elspeth.orchestration.stall": "reply_started",
    "elspeth.orchestration.pipeline": "key_identity",
    "elspeth.loop_bound": "LoopBoundSDK",
    "elspeth.spreadsheet": "SanitizeOptions neutralise_formula warn_unsanitised",
    "elspeth.discovery": "PluginSource builtin_sources load_registry",
    "elspeth.config": "load_settings_text LoadedSettings PluginRef Prompts load_settings",
    "elspeth.engine": "run_settings",
    "elspeth.config._yaml": "Checker",
    "elspeth.orchestration.fields": "check_needed_fields",
    "elspeth.orchestration.subplugins": "close_plugins keyed_plugins open_plugins plugin_summaries",
    "elspeth.ledger": "Ledger Spend",
    "elspeth.store": "RunStore StoreError",
    "elspeth.store_backends": "open_store_url",
    "elspeth.orchestration": (
        "Cancel LLMPipeline NullProgress OrchestrationContext Progress RowCounts RowFailed RowRunner run_rows"
    ),
    "elspeth.orchestration.plugin_context": "PluginContext",
    "elspeth.registry": "PluginInfo Registry Resolved",
    "elspeth.references": "PluginReference",
    "elspeth.scrub": "install_log_scrubbing register_secret scrub_exception scrub_secrets secret_from_env",
    "elspeth.spool": "Spool SpoolWriter",
    "elspeth.streams": "Acknowledges Malformed StreamSink",
    "elspeth.templates": "PromptTemplate TemplateError check_template compile_template",
}
_LAZY = {name: module for module, names in _BY_MODULE.items() for name in names.split()}


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
    "BATCH_ID_KEY",
    "BatchItem",
    "BatchLimits",
    "BatchResult",
    "BatchStatus",
    "BatchingClient",
    "ByteRanges",
    "Cancel",
    "Checker",
    "ConfigError",
    "ControlRegistrar",
    "CsvOptions",
    "CsvPartitions",
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
    "open_ranges",
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
    "split_batches",
    "splittable",
    "supports_batching",
    "to_json",
    "warn_unsanitised",
    "write_atomically",
]
