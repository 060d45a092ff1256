"""``elspeth plugins show``."""

from __future__ import annotations

import json

import typer

from elspeth.errors import PluginError
from elspeth.registry import Registry, options_schema


def show_plugin(registry: Registry, name: str, as_json: bool) -> None:
    """Print each plugin called ``name`` with its options."""
    matches = registry.find(name)
    if not matches:
        known = sorted({i.name for i in registry if i.domain})
        import difflib

        close = difflib.get_close_matches(name.rpartition(":")[2], known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise PluginError(f"no plugin called '{name}'{hint} See `elspeth plugins list`.")
    docs = []
    for info in matches:
        doc = info.to_dict()
        doc["options"] = options_schema(info.options) if info.options is not None else []
        docs.append(doc)
    if as_json:
        typer.echo(json.dumps(docs, indent=2, default=str))
        return
    for doc in docs:
        typer.echo(f"{doc['name']} ({doc['domain'] or 'entry point'}): {doc['description']}")
        typer.echo(f"  from {doc['distribution']} {doc['version']}, status {doc['status']}")
        if doc["error"]:
            typer.echo(f"  error: {doc['error']}")
        if doc["options"]:
            typer.echo("  options:")
        for opt in doc["options"]:
            default = "required" if opt["required"] else f"default {json.dumps(opt['default'], default=str)}"
            typer.echo(f"    {opt['name']}: {opt['type']} ({default})")
            if opt["description"]:
                typer.echo(f"        {opt['description']}")
        typer.echo("")
