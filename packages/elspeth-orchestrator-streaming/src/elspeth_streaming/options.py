"""The streaming orchestrator's options (``orchestrator.options`` in the settings)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth_streaming.windows import WindowOptions

__all__ = ["StreamingOptions"]


class StreamingOptions(BaseModel):
    """How each message becomes a result, and how results reach the streaming sinks."""

    model_config = ConfigDict(extra="forbid")

    output_field: str = Field("response", min_length=1, description="the output column holding the LLM's reply")
    params: dict[str, Any] = Field(
        default_factory=dict, description="request parameters for every call (temperature, max_tokens, ...)"
    )
    emit_batch: int = Field(
        256, ge=1, description="at most this many results per emit to the sinks (fewer when the stream is quiet)"
    )
    emit_linger_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="after a result, wait this long for more to go out with it (as Kafka's linger.ms): fewer, "
        "larger emits and run-store commits, at this much latency",
    )
    emit_queue: int | None = Field(
        None,
        ge=1,
        description="results that may wait for a slow sink before workers wait too, so the source is read no "
        "faster than the sinks take results (default: 4 x concurrency, at least 64)",
    )
    poll_seconds: float = Field(
        0.2, gt=0, le=5, description="how often a wait on a quiet source looks whether the run was asked to stop"
    )
    progress_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the progress display's line (messages/s, lag, in flight) is redrawn"
    )
    windows: list[WindowOptions] = Field(
        default_factory=list,
        description="count windows (`every: N` messages) and time windows (`seconds: S`) whose running aggregates "
        "go to the sinks as records of group `window` and to the log",
    )
