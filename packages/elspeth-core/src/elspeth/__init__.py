"""Elspeth: an orchestrator for work over tabular data that usually involves LLM calls.

This module is the public API for plugin authors. A plugin module imports what it needs from here::

    from elspeth import hookimpl, LLMRequest, LLMResponse

Heavier parts (templates, the run engine, discovery) load on first use, so that importing
``elspeth`` stays cheap for every plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from elspeth._sync import call as invoke
from elspeth._sync import inline
from elspeth._sync import iterate as iterate_rows
from elspeth.errors import (
    ConfigError,
    ElspethError,
    PluginError,
    Problem,
    ProcessorFailed,
    RunFailed,
    ValidationFailed,
)
from elspeth.hookspecs import ControlRegistrar, HookspecAdder, Registrar, hookimpl, hookspec
from elspeth.types import (
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

if TYPE_CHECKING:
    from elspeth.builtins.sinks import jsonl_lines, to_json, write_atomically
    from elspeth.config import LoadedSettings, PluginRef, Prompts, load_settings
    from elspeth.config._yaml import Checker
    from elspeth.discovery import load_registry
    from elspeth.orchestration import (
        Cancel,
        LLMPipeline,
        NullProgress,
        OrchestrationContext,
        PluginContext,
        Progress,
        run_rows,
    )
    from elspeth.orchestration.fields import check_needed_fields
    from elspeth.orchestration.subplugins import close_plugins, keyed_plugins, open_plugins, plugin_summaries
    from elspeth.registry import PluginInfo, Registry, Resolved
    from elspeth.spool import Spool, SpoolWriter
    from elspeth.templates import PromptTemplate, TemplateError, check_template, compile_template

__version__ = "0.1.0"

_LAZY = {
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
    "Cancel": "elspeth.orchestration",
    "LLMPipeline": "elspeth.orchestration",
    "NullProgress": "elspeth.orchestration",
    "OrchestrationContext": "elspeth.orchestration",
    "PluginContext": "elspeth.orchestration.plugin_context",
    "Progress": "elspeth.orchestration",
    "run_rows": "elspeth.orchestration",
    "PluginInfo": "elspeth.registry",
    "Registry": "elspeth.registry",
    "Resolved": "elspeth.registry",
    "Spool": "elspeth.spool",
    "SpoolWriter": "elspeth.spool",
    "jsonl_lines": "elspeth.builtins.sinks",
    "to_json": "elspeth.builtins.sinks",
    "write_atomically": "elspeth.builtins.sinks",
    "PromptTemplate": "elspeth.templates",
    "TemplateError": "elspeth.templates",
    "check_template": "elspeth.templates",
    "compile_template": "elspeth.templates",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Artifact",
    "Cancel",
    "Checker",
    "ConfigError",
    "ControlRegistrar",
    "ElspethError",
    "Failure",
    "HookspecAdder",
    "LLMPipeline",
    "LLMRequest",
    "LLMResponse",
    "LoadedSettings",
    "NullProgress",
    "OrchestrationContext",
    "PluginContext",
    "PluginError",
    "PluginInfo",
    "PluginRef",
    "Problem",
    "ProcessorFailed",
    "Progress",
    "PromptTemplate",
    "Prompts",
    "Record",
    "Registrar",
    "Registry",
    "Resolved",
    "Row",
    "RunFailed",
    "RunMetadata",
    "RunResult",
    "Spool",
    "SpoolWriter",
    "Table",
    "TemplateError",
    "Usage",
    "ValidationFailed",
    "check_needed_fields",
    "check_template",
    "close_plugins",
    "compile_template",
    "flatten",
    "hookimpl",
    "hookspec",
    "inline",
    "invoke",
    "iterate_rows",
    "jsonl_lines",
    "keyed_plugins",
    "load_registry",
    "load_settings",
    "open_plugins",
    "plugin_summaries",
    "reported_artifacts",
    "run_rows",
    "to_json",
    "write_atomically",
]
