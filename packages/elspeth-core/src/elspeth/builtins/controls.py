"""Builtin controls: rate limiters ``fixed_window``, ``token_bucket``, ``adaptive``; cost tracker ``price_table``.

A rate limiter's ``acquire`` runs before every attempt of every call (retries included); the
pipeline also tells it about each success (``on_success``) and each 429 (``on_rate_limited``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from elspeth.ledger import Ledger
from elspeth.types import LLMRequest, LLMResponse


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
        need = min(estimate_tokens(request), int(self._tok_cap)) if self._tps else 0
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

    def current_rate(self, request: LLMRequest) -> float:
        """The rate requests are let through, per second (the ``rate_limiter_rate`` gauge)."""
        return self._rps

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Charge the difference between the tokens really used and the estimate."""
        reserved = self._reserved.pop(id(request), 0)
        if self._tps:
            self._tokens -= response.usage.total_tokens - reserved

    def summary(self) -> dict[str, Any]:
        """Total time callers waited."""
        return {"waited_s": round(self.waited_s, 3)}


_EPOCH = "rate_epoch"  # request.metadata key: the lane's congestion epoch when the request got its slot


@dataclass
class _Lane:
    rate: float
    next_time: float = 0.0
    epoch: int = 0  # bumped by every cut; a 429 from an earlier epoch was already answered by that cut
    cuts: int = 0
    ignored: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    history: list[dict[str, Any]] = field(default_factory=list)
    last_logged: float = 0.0


class Adaptive:
    """AIMD pacing per endpoint and key: halve the rate on a 429 and honour Retry-After, creep back up on success.

    Lanes are keyed by ``request.metadata["endpoint"]`` and ``["key_id"]`` (the pipeline sets both from
    the client), so two API keys on one endpoint are paced apart, as the service meters them. The rate
    is cut once per congestion epoch: a 429 for a request that got its slot before the latest cut is
    the same congestion that cut already answered (a burst of 64 simultaneous 429s halves the rate
    once, not 64 times), though its ``Retry-After`` is still honoured.
    """

    name = "adaptive"

    class Options(BaseModel):
        """Options of ``adaptive``."""

        model_config = ConfigDict(extra="forbid")

        initial_rps: float = Field(10.0, gt=0, description="starting rate, calls per second")
        min_rps: float = Field(0.2, gt=0, description="the rate never falls below this")
        max_rps: float = Field(500.0, gt=0, description="the rate never rises above this")
        increase_rps: float = Field(1.0, gt=0, description="additive increase: about this much per second of success")
        decrease_factor: float = Field(
            0.5, gt=0, lt=1, description="multiplicative decrease, once per burst of 429s (congestion epoch)"
        )
        history_limit: int = Field(500, ge=1, description="rate changes kept for the run metadata")

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lanes: dict[str, _Lane] = {}
        self._t0 = time.monotonic()

    def _lane(self, request: LLMRequest) -> _Lane:
        key = f"{request.metadata.get('endpoint', '')}|{request.metadata.get('key_id', '')}"
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(rate=self.options.initial_rps)
            self._note(lane, "start")
        return lane

    def _note(self, lane: _Lane, event: str) -> None:
        if len(lane.history) < self.options.history_limit:
            lane.history.append(
                {"t_s": round(time.monotonic() - self._t0, 3), "rps": round(lane.rate, 3), "event": event}
            )
            lane.last_logged = lane.rate

    async def acquire(self, request: LLMRequest) -> None:
        """Wait for this lane's next slot; the request is stamped with the lane's congestion epoch."""
        lane = self._lane(request)
        async with lane.lock:
            now = time.monotonic()
            start = max(now, lane.next_time)
            lane.next_time = start + 1 / lane.rate
            request.metadata[_EPOCH] = lane.epoch
        if start > now:
            await asyncio.sleep(start - now)

    def current_rate(self, request: LLMRequest) -> float:
        """The rate of the request's lane, per second (the ``rate_limiter_rate`` gauge)."""
        return self._lane(request).rate

    async def on_success(self, request: LLMRequest, response: LLMResponse) -> None:
        """Additive increase."""
        lane = self._lane(request)
        lane.rate = min(self.options.max_rps, lane.rate + self.options.increase_rps / lane.rate)
        if lane.rate >= lane.last_logged * 1.1 or lane.rate == self.options.max_rps != lane.last_logged:
            self._note(lane, "increase")

    async def on_rate_limited(self, request: LLMRequest, retry_after: float | None) -> None:
        """Honour Retry-After on this lane; cut the rate unless this epoch's congestion was already answered."""
        lane = self._lane(request)
        if retry_after:
            lane.next_time = max(lane.next_time, time.monotonic() + retry_after)
        if request.metadata.get(_EPOCH, lane.epoch) < lane.epoch:
            lane.ignored += 1
            return
        lane.rate = max(self.options.min_rps, lane.rate * self.options.decrease_factor)
        lane.epoch += 1
        lane.cuts += 1
        self._note(lane, f"429 (retry after {retry_after} s)" if retry_after else "429")

    def summary(self) -> dict[str, Any]:
        """Each lane's current rate, cuts, 429s already answered by a cut, and history of changes."""
        return {
            key: {"rps": round(lane.rate, 3), "cuts": lane.cuts, "ignored_429s": lane.ignored, "history": lane.history}
            for key, lane in self._lanes.items()
        }


class ModelPrice(BaseModel):
    """Prices per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="price per million prompt tokens")
    output: float = Field(ge=0, description="price per million completion tokens")
    cached_input: float | None = Field(
        None, ge=0, description="price per million cached prompt tokens (default: input)"
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
        cached_price = price.cached_input if price.cached_input is not None else price.input
        cost = (
            (usage.prompt_tokens - cached) * price.input
            + cached * cached_price
            + usage.completion_tokens * price.output
        ) / 1_000_000
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
