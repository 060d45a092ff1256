"""The spending ledger: the one owner of what a run spent (cost, tokens, LLM calls, attempts, cache hits).

The LLM pipeline writes every call into the run's :class:`Ledger` as it ends: a live answer (its
tokens, its cost as the cost tracker priced it, its HTTP attempts), an answer from the response cache
(a cache hit: nothing spent), a call whose every attempt failed (its attempts). An answer that a
middleware or a validator then rejects was paid for, and is counted. While the row runner works on a
row, what the row's calls spend is also kept on the row's own :class:`Spend`, which goes to the run
store with the row's commit: so a killed attempt's spending is known from its committed rows, and a
resumed run's ledger starts from what every earlier attempt spent.

Example::

    ledger = Ledger()
    with ledger.row() as spend:
        ledger.answered(response)
    assert spend.llm_calls == ledger.attempt.llm_calls == 1
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from elspeth.datatypes import LLMResponse
from elspeth.totals import RunTotals, is_number

__all__ = ["Ledger", "Spend"]

_NUMBERS = ("cost", "prompt_tokens", "completion_tokens", "cached_tokens", "llm_calls", "cache_hits", "attempts")


class Spend:
    """What some calls spent: a row's, or an attempt's. Plain and mutable: it is added to once per call.

    Attributes:
        cost: money, as the cost tracker priced the answers (0 without a cost tracker).
        priced: whether any answer had a price.
        prompt_tokens: prompt tokens of live answers.
        completion_tokens: completion tokens of live answers.
        cached_tokens: prompt tokens the provider served from its prompt cache.
        llm_calls: live answers (every one that came back from the service, rejected ones included).
        cache_hits: answers from the response cache (no call made, nothing spent).
        attempts: HTTP attempts, retries and failed calls included.
        latency_s: time spent waiting on live answers.

    """

    __slots__ = (*_NUMBERS, "latency_s", "priced")

    def __init__(self) -> None:
        self.cost = 0.0
        self.priced = False
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.llm_calls = self.cache_hits = self.attempts = 0
        self.latency_s = 0.0

    def answered(self, response: LLMResponse) -> None:
        """Count one answer: a live one, or a cache hit."""
        if response.cached:
            self.cache_hits += 1
            self.priced = self.priced or is_number(response.metrics.get("cost"))  # priced at 0: nothing paid
            return
        usage = response.usage
        self.llm_calls += 1
        self.attempts += response.attempts
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cached_tokens += usage.cached_tokens
        self.latency_s += response.latency_s
        cost = response.metrics.get("cost")
        if is_number(cost):
            self.cost += cost
            self.priced = True

    def failed(self, attempts: int) -> None:
        """Count a call that failed after ``attempts`` HTTP attempts."""
        self.attempts += attempts

    def add(self, other: Spend) -> None:
        """Add ``other`` to this."""
        if not other and not other.latency_s and not other.priced:
            return  # most rows of a run without LLM calls spent nothing: adding seven zeros costs more than this test
        for name in _NUMBERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency_s += other.latency_s
        self.priced = self.priced or other.priced

    def __bool__(self) -> bool:
        # written out, not a loop over _NUMBERS: it is asked once per committed row
        return bool(
            self.cost
            or self.prompt_tokens
            or self.completion_tokens
            or self.cached_tokens
            or self.llm_calls
            or self.cache_hits
            or self.attempts
        )

    def to_dict(self) -> dict[str, Any]:
        """The non-zero figures, JSON-ready (what the run store keeps with a row)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _NUMBERS if getattr(self, name)}
        if self.priced:
            out["priced"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spend:
        """A spend from :meth:`to_dict`'s output (unknown keys are ignored)."""
        spend = cls()
        for name in _NUMBERS:
            value = data.get(name)
            if is_number(value):
                setattr(spend, name, value)
        spend.priced = bool(data.get("priced"))
        return spend

    @classmethod
    def from_metrics(cls, metrics: Any) -> Spend:
        """What a row's metrics say it spent (``cost``, ``prompt_tokens``, ``completion_tokens``; nothing if cached).

        For rows committed without a ledger (a row handed to the store directly); the row runner hands the
        store the ledger's own figures instead.
        """
        spend = cls()
        if not metrics or not isinstance(metrics, Mapping) or metrics.get("cached"):
            return spend
        cost, prompt, completion = metrics.get("cost"), metrics.get("prompt_tokens"), metrics.get("completion_tokens")
        if is_number(cost):
            spend.cost, spend.priced = float(cost), True
        if is_number(prompt):
            spend.prompt_tokens = int(prompt)
        if is_number(completion):
            spend.completion_tokens = int(completion)
        return spend

    def totals(self, duration_s: float = 0.0) -> RunTotals:
        """As :class:`~elspeth.totals.RunTotals`, with ``duration_s`` as its wall time."""
        return RunTotals(self.cost, self.prompt_tokens, self.completion_tokens, self.llm_calls, duration_s)


_ROW: contextvars.ContextVar[Spend | None] = contextvars.ContextVar("elspeth_row_spend", default=None)


class _RowSpend:
    """``with ledger.row() as spend``: a class, not ``@contextmanager``, as it is entered once per row."""

    __slots__ = ("spend", "token")

    def __enter__(self) -> Spend:
        self.spend = Spend()
        self.token = _ROW.set(self.spend)
        return self.spend

    def __exit__(self, *exc: object) -> None:
        _ROW.reset(self.token)


class Ledger:
    """A run's spending: this attempt's, written by the LLM pipeline, over what earlier attempts spent.

    Attributes:
        attempt: what this attempt spent so far.
        earlier: what the run's earlier attempts spent (set on resume from the run store).

    """

    def __init__(self, earlier: RunTotals | None = None) -> None:
        self.attempt = Spend()
        self.earlier = earlier or RunTotals()

    def answered(self, response: LLMResponse) -> None:
        """Count one answer (live or from the cache), for the attempt and for the row being worked on."""
        self.attempt.answered(response)
        row = _ROW.get()
        if row is not None:
            row.answered(response)

    def failed(self, attempts: int) -> None:
        """Count a call whose every attempt failed."""
        self.attempt.failed(attempts)
        row = _ROW.get()
        if row is not None:
            row.failed(attempts)

    def row(self) -> _RowSpend:
        """Keep, on the returned :class:`Spend`, what the calls made inside this block (in this task) spend."""
        return _RowSpend()

    @property
    def cost(self) -> float:
        """The run's cost over every attempt (what a budget is checked against)."""
        return self.earlier.cost + self.attempt.cost

    def total(self, duration_s: float = 0.0) -> RunTotals:
        """The run's totals over every attempt; ``duration_s`` is this attempt's wall time."""
        return self.earlier + self.attempt.totals(duration_s)
