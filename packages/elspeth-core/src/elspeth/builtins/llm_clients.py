"""Builtin LLM clients for offline work: ``mock`` (deterministic) and ``static`` (one fixed reply)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth.datatypes import LLMRequest, LLMResponse, Usage


def _tokens(text: str) -> int:
    # about four characters a token in English text, as OpenAI's own rule of thumb has it
    return max(1, (len(text) + 3) // 4)


class MockError(RuntimeError):
    """The mock client's simulated failure."""


class MockClient:
    """Deterministic replies from a hash of the prompts and a seed, with a score in [score_min, score_max]."""

    name = "mock"
    default_clearance = "SECRET"  # replies are computed in-process: no data leaves the machine
    supports_seed = True  # a ``seed`` in the request's params changes the reply, as a provider's seed does

    class Options(BaseModel):
        """Options of the ``mock`` client."""

        model_config = ConfigDict(extra="forbid")

        seed: int = Field(0, description="changes every score; the same seed and prompts give the same reply")
        model: str = Field("mock-1", description="the model name reported in responses")
        score_min: float = Field(0.4, description="lowest score the client gives")
        score_max: float = Field(0.9, description="highest score the client gives")
        json_reply: bool = Field(False, description="reply with a JSON object {score, rationale} instead of text")
        latency_ms: float = Field(0.0, ge=0, description="simulated latency of each call")
        failure_rate: float = Field(0.0, ge=0, le=1, description="share of prompts that fail, chosen by hash")
        temperature: float | None = Field(None, description="accepted for compatibility; does not change replies")

    def __init__(self, options: Options) -> None:
        self.options = options

    def _digest(self, request: LLMRequest) -> bytes:
        parts = [request.system, request.user, str(self.options.seed)]
        if request.params.get("seed") is not None:  # a per-call seed (an experiment's epoch)
            parts.append(str(request.params["seed"]))
        blob = "\x1f".join(parts)
        return hashlib.sha256(blob.encode()).digest()

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as this client counts them in its usage (``elspeth estimate`` reads it)."""
        return _tokens(text)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Reply deterministically; sleeps ``latency_ms`` first."""
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        digest = self._digest(request)
        if self.options.failure_rate and int.from_bytes(digest[8:12], "big") / 2**32 < self.options.failure_rate:
            raise MockError("mock failure (chosen by failure_rate)")
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        score = round(self.options.score_min + fraction * (self.options.score_max - self.options.score_min), 4)
        rationale = f"mock judgement of: {request.user[:60]}"
        if self.options.json_reply:
            content = json.dumps({"score": score, "rationale": rationale})
        else:
            content = f"Score: {score}\n{rationale}"
        usage = Usage(_tokens(request.system) + _tokens(request.user), _tokens(content))
        return LLMResponse(content=content, usage=usage, model=self.options.model, metrics={"score": score})


class StaticClient:
    """The same configured reply for every request."""

    name = "static"
    default_clearance = "SECRET"  # sends nothing anywhere

    class Options(BaseModel):
        """Options of the ``static`` client."""

        model_config = ConfigDict(extra="forbid")

        content: str = Field(description="the reply text")
        score: float | None = Field(None, description="a score to attach to every response's metrics")
        metrics: dict[str, Any] = Field(default_factory=dict, description="further metrics to attach")
        model: str = Field("static", description="the model name reported in responses")

    def __init__(self, options: Options) -> None:
        self.options = options

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as this client counts them in its usage (``elspeth estimate`` reads it)."""
        return _tokens(text)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Return the configured reply."""
        metrics = dict(self.options.metrics)
        if self.options.score is not None:
            metrics["score"] = self.options.score
        usage = Usage(_tokens(request.system) + _tokens(request.user), _tokens(self.options.content))
        return LLMResponse(content=self.options.content, usage=usage, model=self.options.model, metrics=metrics)
