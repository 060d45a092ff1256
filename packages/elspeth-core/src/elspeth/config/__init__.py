"""Settings: loading YAML with line numbers, and the pydantic models that validate it."""

from elspeth.config._yaml import SourceMap, format_loc
from elspeth.config.settings import LoadedSettings, PluginRef, Prompts, Settings, load_settings, load_settings_text

__all__ = [
    "LoadedSettings",
    "PluginRef",
    "Prompts",
    "Settings",
    "SourceMap",
    "format_loc",
    "load_settings",
    "load_settings_text",
]
