"""Builtin controls: rate limiters ``fixed_window``, ``token_bucket``, ``adaptive``; cost tracker ``price_table``.

A rate limiter's ``acquire`` runs before every attempt of every call (retries included); the
pipeline also tells it about each success (``on_success``) and each 429 (``on_rate_limited``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth.builtins.adaptive import Adaptive
from elspeth.datatypes import LLMRequest, LLMResponse
from elspeth.ledger import Ledger

__all__ = ["Adaptive", "FixedWindow", "ModelPrice", "PriceTable", "TokenBucket", "estimate_tokens"]


class FixedWindow:
    """At most ``requests`` calls in each window of ``per_seconds``."""

    name = "fixed_window"

    class Options(BaseModel):
        """Options of ``fixed_window``."""

        model_config = ConfigDict(extra="forbid")

        requests: int = Field(ge=1, description="calls allowed per window")
        per_seconds: float = Field(1.0, gt=0, description="window length in seconds")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lock = asyncio.Lock()
        self._window_start: float | None = None  # the first window opens with the first call
        self._count = 0
        self.waited_s = 0.0

    async def acquire(self, request: LLMRequest) -> None:
        """Wait for a free slot in the current or a later window."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if self._window_start is None or now - self._window_start >= self.options.per_seconds:
                    self._window_start, self._count = now, 0
                if self._count < self.options.requests:
                    self._count += 1
                    return
                pause = self._window_start + self.options.per_seconds - now
                self.waited_s += pause
                await asyncio.sleep(pause)

    def reserve(self, request: LLMRequest) -> float:
        """Take the next free slot now, without waiting: the ``time.monotonic()`` at which the call may start.

        Windows may be reserved ahead; what a cluster-wide limiter's coordinator calls (the ``dask`` executor).
        """
        now, per = time.monotonic(), self.options.per_seconds
        if self._window_start is None or now - self._window_start >= per:
            self._window_start, self._count = now, 0
        if self._count >= self.options.requests:
            self._window_start, self._count = self._window_start + per, 0
        self._count += 1
        return max(now, self._window_start)

    def current_rate(self, request: LLMRequest) -> float:
        """The rate allowed, per second (the ``rate_limiter_rate`` gauge)."""
        return self.options.requests / self.options.per_seconds

    def summary(self) -> dict[str, Any]:
        """Total time callers waited."""
        return {"waited_s": round(self.waited_s, 3)}


def estimate_tokens(request: LLMRequest) -> int:
    """Tokens a request will use before it is sent: its prompts (about 4 characters a token) plus ``max_tokens``."""
    prompt = (len(request.system) + len(request.user) + 3) // 4
    completion = request.params.get("max_tokens")
    return prompt + (int(completion) if isinstance(completion, int) else 0)


class TokenBucket:
    """Requests and (optionally) tokens per minute, as two token buckets refilled continuously."""

    name = "token_bucket"

    class Options(BaseModel):
        """Options of ``token_bucket``."""

        model_config = ConfigDict(extra="forbid")

        requests_per_minute: float = Field(gt=0, description="sustained calls per minute")
        tokens_per_minute: float | None = Field(None, gt=0, description="sustained tokens per minute (prompt + reply)")
        burst_seconds: float = Field(1.0, gt=0, description="how many seconds' worth may be spent at once")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lock = asyncio.Lock()
        self._rps = options.requests_per_minute / 60
        self._tps = (options.tokens_per_minute or 0) / 60
        self._req_cap = max(1.0, self._rps * options.burst_seconds)
        self._tok_cap = max(1.0, self._tps * options.burst_seconds)
        self._requests = self._req_cap
        self._tokens = self._tok_cap
        self._stamp = time.monotonic()
        self._reserved: dict[int, int] = {}
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = time.monotonic()
        elapsed, self._stamp = now - self._stamp, now
        self._requests = min(self._req_cap, self._requests + elapsed * self._rps)
        if self._tps:
            self._tokens = min(self._tok_cap, self._tokens + elapsed * self._tps)

    async def acquire(self, request: LLMRequest) -> None:
        """Wait until one request and the request's estimated tokens are available."""
        need = self.tokens_for(request)
        async with self._lock:
            while True:
                self._refill()
                short_req = max(0.0, 1 - self._requests) / self._rps
                short_tok = max(0.0, need - self._tokens) / self._tps if self._tps else 0.0
                pause = max(short_req, short_tok)
                if pause <= 0:
                    self._requests -= 1
                    self._tokens -= need
                    self._reserved[id(request)] = need
                    return
                self.waited_s += pause
                await asyncio.sleep(pause)

    def tokens_for(self, request: LLMRequest) -> int:
        """The tokens ``request`` takes from the bucket before it is sent (0 without ``tokens_per_minute``)."""
        return min(estimate_tokens(request), int(self._tok_cap)) if self._tps else 0

    def reserve(self, request: LLMRequest) -> float:
        """Take a request and its tokens now, without waiting: the ``time.monotonic()`` at which the call may start.

        The buckets go below zero for slots reserved ahead, so later reservations start later; the
        tokens taken are stamped on ``request.metadata["rate_tokens"]`` for :meth:`on_success`. What a
        cluster-wide limiter's coordinator calls to hand slots out in leases (the ``dask`` executor).
        """
        need = self.tokens_for(request)
        self._refill()
        short_req = max(0.0, 1 - self._requests) / self._rps
        short_tok = max(0.0, need - self._tokens) / self._tps if self._tps else 0.0
        self._requests -= 1
        self._tokens -= need
        request.metadata["rate_tokens"] = need
        return self._stamp + max(short_req, short_tok)

    def current_rate(self, request: LLMRequest) -> float:
        """The rate requests are let through, per second (the ``rate_limiter_rate`` gauge)."""
        return self._rps

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Charge the difference between the tokens really used and the estimate."""
        reserved = self._reserved.pop(id(request), None)
        if reserved is None:  # reserved through reserve(): the tokens taken are on the request
            reserved = int(request.metadata.get("rate_tokens", 0))
        if self._tps:
            self._tokens -= response.usage.total_tokens - reserved

    def summary(self) -> dict[str, Any]:
        """Total time callers waited."""
        return {"waited_s": round(self.waited_s, 3)}


class ModelPrice(BaseModel):
    """Prices per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="price per million prompt tokens")
    output: float = Field(ge=0, description="price per million completion tokens")
    cached_input: float | None = Field(
        None, ge=0, description="price per million cached prompt tokens (default: input)"
    )
    batch_input: float | None = Field(
        None, ge=0, description="price per million prompt tokens through a batch API (default: half of input)"
    )
    batch_output: float | None = Field(
        None, ge=0, description="price per million completion tokens through a batch API (default: half of output)"
    )


class PriceTable:
    """Prices every call from a per-model table; optionally stops the run at a budget."""

    name = "price_table"

    class Options(BaseModel):
        """Options of ``price_table``."""

        model_config = ConfigDict(extra="forbid")

        prices: dict[str, ModelPrice] = Field(description="model name (or prefix, or '*') to prices per million tokens")
        currency: str = Field("USD", description="shown with every total")
        budget: float | None = Field(
            None, gt=0, description="stop taking new rows once this much is spent (a resumed run counts every attempt)"
        )

    def __init__(self, options: Options) -> None:
        self.options = options
        self.unpriced: dict[str, int] = {}
        self.by_model: dict[str, float] = {}
        self.ledger = Ledger()  # the run's, once the LLM pipeline hands it over (use_ledger)

    def use_ledger(self, ledger: Ledger) -> None:
        """Read the run's spending from ``ledger`` (the LLM pipeline calls this): the budget covers every attempt."""
        self.ledger = ledger

    @property
    def total(self) -> float:
        """What the run spent so far, every attempt of a resumed run included (the ledger's figure)."""
        return self.ledger.cost

    @property
    def stop_reason(self) -> str | None:
        """Why the run should take no new rows: the budget is reached (None until it is)."""
        budget, total = self.options.budget, self.total
        if budget is None or total < budget:
            return None
        return f"budget of {budget} {self.options.currency} reached ({total:.4f} spent)"

    def price_for(self, model: str | None) -> ModelPrice | None:
        """The exact entry for ``model``, else its longest matching prefix, else ``*``."""
        prices = self.options.prices
        if model in prices:
            return prices[model]
        if model:
            prefixes = [p for p in prices if p != "*" and model.startswith(p)]
            if prefixes:
                return prices[max(prefixes, key=len)]
        return prices.get("*")

    async def record(self, request: LLMRequest, response: LLMResponse) -> float | None:
        """Price one response (the pipeline writes the cost into the run's ledger, where the budget reads it)."""
        usage = response.usage
        model = response.model or request.params.get("model")
        price = self.price_for(model)
        if price is None:
            self.unpriced[str(model)] = self.unpriced.get(str(model), 0) + 1
            return None
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        live_in, live_out = price.input, price.output
        if request.metadata.get("batch_id"):  # elspeth.batching.BATCH_ID_KEY: sent through a provider batch API
            live_in = price.batch_input if price.batch_input is not None else price.input / 2
            live_out = price.batch_output if price.batch_output is not None else price.output / 2
        cached_price = price.cached_input if price.cached_input is not None else live_in
        cost = (usage.prompt_tokens - cached) * live_in + cached * cached_price + usage.completion_tokens * live_out
        cost /= 1_000_000
        self.by_model[str(model)] = self.by_model.get(str(model), 0.0) + cost
        return cost

    def summary(self) -> dict[str, Any]:
        """The run's cost, calls and tokens (the ledger's, every attempt) and what this tracker priced, by model."""
        spent, earlier = self.ledger.attempt, self.ledger.earlier
        return {
            "currency": self.options.currency,
            "total_cost": round(self.total, 8),
            "calls": earlier.llm_calls + spent.llm_calls,
            "tokens": {
                "prompt": earlier.prompt_tokens + spent.prompt_tokens,
                "completion": earlier.completion_tokens + spent.completion_tokens,
                "cached": spent.cached_tokens,
            },
            "by_model": {k: round(v, 8) for k, v in self.by_model.items()},
            "unpriced_calls": dict(self.unpriced),
            "budget": self.options.budget,
            "budget_reached": self.stop_reason is not None,
            **({"earlier_attempts_cost": round(earlier.cost, 8)} if earlier.cost else {}),
        }
