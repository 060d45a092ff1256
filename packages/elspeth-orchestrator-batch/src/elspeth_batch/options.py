"""The batch orchestrator's options (``orchestrator.options`` in the settings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import PluginRef

__all__ = ["BatchOptions"]


class BatchOptions(BaseModel):
    """How each row's reply becomes columns, and how rows stream to the sinks."""

    model_config = ConfigDict(extra="forbid")

    output_field: str = Field(
        "response",
        min_length=1,
        description="the output column holding the reply's raw text (with json_fields: only if include_raw, "
        "or when a reply that does not parse is kept with on_parse_error: keep_raw)",
    )
    json_fields: dict[str, str] = Field(
        default_factory=dict,
        description="output column to a key of the reply parsed as JSON, or a dotted path into it "
        "(`verdict.score`, `items.0.name`); a reply that is not JSON or lacks a key fails its row",
    )
    include_raw: bool = Field(False, description="with json_fields, also keep the raw reply in output_field")
    on_parse_error: Literal["fail", "keep_raw"] = Field(
        "fail",
        description="a reply that is not JSON or lacks a json_fields key: the row's failure (stage 'parse'), "
        "or a record with the raw reply, null for what is missing and the reason in the column 'parse_error'",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="request parameters for every call (temperature, max_tokens, ...)"
    )
    post_processors: list[PluginRef] = Field(
        default_factory=list,
        description="processor plugins run after the reply is mapped, on the row's values with the new "
        "columns over them; what they add or change becomes output columns",
    )
    reorder_window: int | None = Field(
        None,
        ge=1,
        description="rows that may finish ahead of the oldest unfinished one before workers wait, keeping "
        "output in input order with flat memory (default: 4 x concurrency, at least 64)",
    )
    chunk_size: int = Field(1000, ge=1, description="records per chunk of the on-disk spool the sinks read")
    spool_dir: str | None = Field(
        None,
        description="folder for the temporary record spools, relative to the output folder (default: the "
        "output folder itself); removed when the run ends",
    )
