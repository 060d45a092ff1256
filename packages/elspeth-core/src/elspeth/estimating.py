"""What a run will cost before its first call: the calls, their tokens and their price, live and in batch.

An orchestrator that makes LLM calls says which it would make for a row with
``planned_calls(row, ctx) -> list[PlannedCall]`` (``batch`` and ``experiment`` do); the estimate reads
every row once, renders each planned request, and counts its tokens: with the client's own
``count_tokens(text)`` where it has one (exact), otherwise at four characters a token (marked as an
estimate). The expected output is each request's ``max_tokens`` (an upper bound), else an assumption
the user states (``--output-tokens``, default 256). Prices come from the ``price_table`` cost tracker;
batch prices from its ``batch_input`` / ``batch_output``, else half the live price (what the
OpenAI, Anthropic and Gemini batch APIs charge), marked as assumed.

The figures leave out validation retries, calls a validator or judge makes, answers the response
cache already holds, and what processors change in a row: the estimate is of the first call of each
planned request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from elspeth._sync import invoke, iterate_rows
from elspeth.datatypes import LLMRequest
from elspeth.errors import ConfigError

if TYPE_CHECKING:
    from elspeth.engine import PreparedRun

__all__ = ["CHARS_PER_TOKEN", "Estimate", "GroupEstimate", "PlannedCall", "estimate_run"]

CHARS_PER_TOKEN = 4
"""The estimate of tokens in a text when the client cannot count them: one per four characters, rounded up."""
BATCH_DISCOUNT = 0.5
"""The batch price when the price table states none: half the live price."""


@dataclass(frozen=True)
class PlannedCall:
    """One call an orchestrator would make for a row: the rendered request and the pipeline it goes through.

    Attributes:
        request: the request as it would be sent (``params`` may hold ``max_tokens``).
        llm: the LLM pipeline (``ctx.llm`` or an experiment's); its client counts tokens and names the
            model, its cost tracker prices the call.
        group: the experiment (or other part of the run) the call belongs to; None for the run's own.

    """

    request: LLMRequest
    llm: Any
    group: str | None = None


@dataclass
class GroupEstimate:
    """The estimate of one experiment (or of the whole run, for the total)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    live_cost: float = 0.0
    batch_cost: float = 0.0
    models: set[str] = field(default_factory=set)
    inputs_exact: bool = True  # every input token counted by the client's tokenizer
    outputs_bounded: bool = True  # every output token count is a max_tokens, not the assumption
    priced: bool = True  # every call found a price
    batch_assumed: bool = False  # a batch price was assumed from the live one

    def add(self, other: GroupEstimate) -> None:
        """Add ``other``'s figures to these."""
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.live_cost += other.live_cost
        self.batch_cost += other.batch_cost
        self.models |= other.models
        self.inputs_exact &= other.inputs_exact
        self.outputs_bounded &= other.outputs_bounded
        self.priced &= other.priced
        self.batch_assumed |= other.batch_assumed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures with what each rests on."""
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "input_tokens_counted": "exact" if self.inputs_exact else f"estimated ({CHARS_PER_TOKEN} chars/token)",
            "output_tokens": self.output_tokens,
            "output_tokens_from": "max_tokens" if self.outputs_bounded else "assumed",
            "live_cost": round(self.live_cost, 6) if self.priced else None,
            "batch_cost": round(self.batch_cost, 6) if self.priced else None,
            "batch_price": "assumed half of live" if self.batch_assumed else "price table",
            "models": sorted(self.models),
        }


@dataclass
class Estimate:
    """A run's estimate: per group (experiment) and in total, with the currency and the rows read."""

    rows: int = 0
    groups: dict[str, GroupEstimate] = field(default_factory=dict)
    currency: str = ""
    output_assumption: int = 256
    budget: float | None = None

    @property
    def total(self) -> GroupEstimate:
        """Every group's figures added up."""
        out = GroupEstimate()
        for group in self.groups.values():
            out.add(group)
        return out

    def over_budget(self) -> bool:
        """Whether the live cost is known and exceeds the cost tracker's budget."""
        total = self.total
        return self.budget is not None and total.priced and total.live_cost > self.budget

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rows, each group's figures, the total, the currency, the assumption and the budget."""
        return {
            "rows": self.rows,
            "currency": self.currency,
            "output_tokens_assumed_per_call": self.output_assumption,
            "budget": self.budget,
            "groups": {name: group.to_dict() for name, group in self.groups.items()},
            "total": self.total.to_dict(),
        }


def count_tokens(text: str, client: Any) -> tuple[int, bool]:
    """Tokens in ``text``: the client's ``count_tokens`` (exact) or one per four characters (estimated)."""
    counter = getattr(client, "count_tokens", None)
    if counter is not None:
        return int(counter(text)), True
    return math.ceil(len(text) / CHARS_PER_TOKEN), False


def model_of(client: Any) -> str | None:
    """The model a client calls, from its options (``model``, else ``deployment``), or None."""
    options = getattr(client, "options", None)
    for attribute in ("model", "deployment"):
        value = getattr(options, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def max_tokens_of(request: LLMRequest, client: Any) -> int | None:
    """The request's ``max_tokens`` (its params, else the client's options), or None."""
    value = request.params.get("max_tokens", getattr(getattr(client, "options", None), "max_tokens", None))
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _price(tracker: Any, model: str | None, tokens_in: int, tokens_out: int) -> tuple[float, float, bool] | None:
    """(live, batch, batch assumed) for these tokens, or None when the tracker has no price for the model."""
    price_for = getattr(tracker, "price_for", None)
    price = price_for(model) if price_for is not None else None
    if price is None:
        return None
    live = (tokens_in * price.input + tokens_out * price.output) / 1e6
    batch_in, batch_out = getattr(price, "batch_input", None), getattr(price, "batch_output", None)
    assumed = batch_in is None or batch_out is None
    batch_in = price.input * BATCH_DISCOUNT if batch_in is None else batch_in
    batch_out = price.output * BATCH_DISCOUNT if batch_out is None else batch_out
    return live, (tokens_in * batch_in + tokens_out * batch_out) / 1e6, assumed


def add_call(estimate: Estimate, call: PlannedCall) -> None:
    """Count one planned call into its group."""
    client = getattr(call.llm, "client", call.llm)
    group = estimate.groups.setdefault(call.group or "run", GroupEstimate())
    tokens_in, exact = count_tokens(call.request.system, client)
    user_tokens, user_exact = count_tokens(call.request.user, client)
    tokens_in += user_tokens
    bound = max_tokens_of(call.request, client)
    tokens_out = bound if bound is not None else estimate.output_assumption
    model = model_of(client)
    group.calls += 1
    group.input_tokens += tokens_in
    group.output_tokens += tokens_out
    group.inputs_exact &= exact and user_exact
    group.outputs_bounded &= bound is not None
    if model is not None:
        group.models.add(model)
    priced = _price(getattr(call.llm, "cost_tracker", None), model, tokens_in, tokens_out)
    if priced is None:
        group.priced = False
        return
    live, batch, assumed = priced
    group.live_cost += live
    group.batch_cost += batch
    group.batch_assumed |= assumed


async def estimate_run(prepared: PreparedRun, *, output_tokens: int = 256) -> Estimate:
    """Read every row once and add up the calls the orchestrator plans for each; no call is made.

    Raises:
        ConfigError: the orchestrator makes LLM calls but cannot say which (no ``planned_calls``).

    """
    ctx, orchestrator = prepared.context, prepared.orchestrator
    tracker = getattr(ctx.llm, "cost_tracker", None) if ctx.llm is not None else None
    options = getattr(tracker, "options", None)
    estimate = Estimate(
        currency=str(getattr(options, "currency", "") or ""),
        output_assumption=output_tokens,
        budget=getattr(options, "budget", None),
    )
    planner = getattr(orchestrator, "planned_calls", None)
    if planner is None:
        if ctx.llm is None:  # an orchestrator that calls no LLM: the estimate is nothing, and says so
            return estimate
        raise ConfigError(
            f"orchestrator '{prepared.orchestrator_name}' cannot say which LLM calls it would make"
            " (it has no planned_calls); nothing to estimate"
        )
    async for row in iterate_rows(prepared.table.rows):
        estimate.rows += 1
        calls: Iterable[PlannedCall] = await invoke(planner, row, ctx)
        for call in calls:
            add_call(estimate, call)
    return estimate


def render_estimate(estimate: Estimate) -> list[str]:
    """The estimate as lines for a terminal: one per group, the total, and what the figures rest on."""
    cur = f" {estimate.currency}" if estimate.currency else ""

    def money(value: float, known: bool) -> str:
        return f"{value:,.4f}{cur}" if known else "unpriced"

    lines = [f"{'':<16} {'calls':>9} {'input tokens':>14} {'output tokens':>14} {'live':>16} {'batch':>16}"]
    groups: Mapping[str, GroupEstimate] = estimate.groups
    for name, g in [*groups.items(), ("total", estimate.total)]:
        approx = "" if g.inputs_exact else "~"
        lines.append(
            f"{name[:16]:<16} {g.calls:>9,} {approx + format(g.input_tokens, ','):>14} {g.output_tokens:>14,}"
            f" {money(g.live_cost, g.priced):>16} {money(g.batch_cost, g.priced):>16}"
        )
    total = estimate.total
    notes = [f"{estimate.rows:,} rows read"]
    if not total.inputs_exact:
        notes.append(f"~ input tokens estimated at {CHARS_PER_TOKEN} characters a token")
    notes.append(
        "output tokens are each request's max_tokens"
        if total.outputs_bounded
        else f"output tokens assume {estimate.output_assumption} a call where no max_tokens is set (--output-tokens)"
    )
    if total.batch_assumed:
        notes.append("batch prices assumed half the live price (set batch_input/batch_output in the price table)")
    if not total.priced:
        notes.append("some calls have no price: add their model to a price_table cost tracker")
    if estimate.budget is not None:
        notes.append(
            f"budget {estimate.budget:,.4f}{cur}" + (": EXCEEDED by the estimate" if estimate.over_budget() else "")
        )
    notes.append("not counted: validation retries, validator and judge calls, cached answers")
    return lines + [f"  {note}" for note in notes]
