"""``pairwise_judge``: an LLM picks the better of the baseline's and the variant's response, row by row.

LLM judges favour a position (often the first answer shown). So the order is drawn per row, criterion
and variant from ``seed`` (the same seed gives the same orders, so the calls are cached and a rerun
is identical), and the bias is measured: how often the response shown first won, against the 50% an
unbiased judge gives when the order is random, with an exact sign test. With ``both_orders`` every
pair is judged twice, once each way; a pair whose two verdicts disagree counts as a tie (and as
``inconsistent``), the strongest control there is, at twice the calls.

Per criterion it reports the variant's wins, the baseline's, ties, refused verdicts, the variant's
win rate among decided pairs with Wilson's 95% interval, the two-sided sign test p-value (not
adjusted across variants or criteria), ``significant`` and ``direction`` (so the ``no_regression``
gate can read it), the position-bias figures, and the judge's calls and cost, apart from the
experiment's. The judge's calls go through the run's LLM pipeline: a resumed or repeated run with the
``response_cache`` utility is answered from the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from elspeth import LLMRequest, PluginRef, Record
from elspeth_judges._calls import JudgeSetup, add_usage, ask_json, usage
from elspeth_judges._pairwise_figures import figures

__all__ = ["PairwiseJudge"]

DEFAULT_SYSTEM = (
    "You are an impartial judge comparing two responses to the same request. Judge only their quality, "
    "not their order or length. Answer with only a JSON object: "
    '{"winner": "A" | "B" | "tie", "reasoning": "<one or two sentences>"}.'
)
DEFAULT_USER = "{{ question }}\n\nCriterion: {{ criterion }}\n\nA: {{ first }}\n\nB: {{ second }}"
FIELDS = ("question", "criterion", "first", "second")
Winner = Literal["A", "B", "tie"]


class PairwiseOptions(BaseModel):
    """Options of ``pairwise_judge``."""

    model_config = ConfigDict(extra="forbid")

    llm: PluginRef | None = Field(None, description="the judging client {plugin, options} (default: the run's `llm`)")
    question: str = Field("Which response is better?", min_length=1, description="what the judge is asked")
    system_prompt: str = Field(DEFAULT_SYSTEM, description="the judge's system prompt")
    user_prompt: str = Field(
        DEFAULT_USER,
        description="the judge's user prompt template; fields: the row's columns, `question`, `criterion`, "
        "`first` and `second` (the two responses, in the drawn order)",
    )
    seed: int = Field(0, description="draws each pair's order; the same seed gives the same orders")
    both_orders: bool = Field(False, description="judge every pair both ways; a disagreement counts as a tie")
    criteria: list[str] | None = Field(None, description="judge only these criteria (default: every one answered)")
    json_schema: bool = Field(
        False, description="ask for the verdict's JSON schema as `response_format` (OpenAI-compatible clients)"
    )
    retries: int = Field(1, ge=0, le=5, description="times to ask again when the verdict is not valid JSON")
    alpha: float = Field(0.05, gt=0, lt=1, description="level of the sign tests (win rate, position bias)")
    concurrency: int = Field(8, ge=1, le=1024, description="judge calls in flight at once")
    keep_verdicts: bool = Field(True, description="list every verdict (row, order, winner, reasoning) in the output")


@dataclass
class _Pair:
    row_id: str
    criterion: str
    baseline: str
    variant: str
    inputs: dict[str, Any]


@dataclass
class _Verdict:
    pair: _Pair
    variant_first: bool
    winner: Winner | None  # as the judge saw it: A is the response shown first
    reasoning: str
    error: str | None

    @property
    def side(self) -> str | None:
        """``variant``, ``baseline``, ``tie``, or None for a refused verdict."""
        if self.winner is None or self.winner == "tie":
            return self.winner
        return "variant" if (self.winner == "A") == self.variant_first else "baseline"


def _criterion(key: str) -> str | None:
    if key == "response":
        return "default"
    return key.removeprefix("response.") if key.startswith("response.") else None


def _pairs(baseline: Sequence[Record], variant: Sequence[Record], criteria: list[str] | None) -> list[_Pair]:
    """Every (row, criterion) both arms answered, matched by row id, in the variant's order."""
    base = {r.row_id: r for r in baseline}
    out = []
    for record in variant:
        other = base.get(record.row_id)
        if other is None:
            continue
        for key, text in record.outputs.items():
            criterion = _criterion(key)
            if criterion is None or key not in other.outputs or (criteria is not None and criterion not in criteria):
                continue
            out.append(_Pair(record.row_id, criterion, str(other.outputs[key]), str(text), dict(record.inputs)))
    return out


class PairwiseJudge(JudgeSetup):
    """Asks an LLM which of baseline and variant answered better, per row, with the order randomized."""

    name = "pairwise_judge"
    Options = PairwiseOptions

    FIELDS = FIELDS
    options: PairwiseOptions

    def variant_first(self, variant: str, pair: _Pair) -> bool:
        """The drawn order of one pair: True when the variant's response is shown first (as A)."""
        key = "\x1f".join(map(str, (self.options.seed, variant, pair.row_id, pair.criterion)))
        return hashlib.sha256(key.encode()).digest()[0] < 128

    @staticmethod
    def read(value: dict[str, Any]) -> tuple[Winner, str]:
        """The verdict's winner and reasoning, or ``ValueError`` naming what is wrong."""
        winner = value.get("winner")
        if winner not in ("A", "B", "tie"):
            raise ValueError(f'\'winner\' must be "A", "B" or "tie", got {winner!r}')
        reasoning = value.get("reasoning")
        if not isinstance(reasoning, str) or not reasoning.strip():
            raise ValueError("'reasoning' must be a non-empty string")
        return winner, reasoning.strip()

    async def compare(self, baseline: Any, variant: Any) -> dict[str, Any]:
        """Judge every pair the two experiments share; see the module's docstring for the figures."""
        self.ready()
        opts = self.options
        slots = asyncio.Semaphore(opts.concurrency)
        jobs = []
        for pair in _pairs(baseline.records, variant.records, opts.criteria):
            first = self.variant_first(variant.name, pair)
            jobs.append((pair, first))
            if opts.both_orders:
                jobs.append((pair, not first))
        spent: dict[str, Any] = {}

        async def judge(pair: _Pair, variant_first: bool) -> _Verdict:
            async with slots:
                verdict = await self._ask(pair, variant_first)
            add_usage(spent, usage(verdict[1]))
            return verdict[0]

        verdicts = await asyncio.gather(*(judge(pair, first) for pair, first in jobs))
        out = figures(verdicts, opts.alpha, both_orders=opts.both_orders)
        out["judge"] = spent or usage([])
        out["seed"], out["both_orders"] = opts.seed, opts.both_orders
        if opts.keep_verdicts:
            out["verdicts"] = [
                {
                    "row_id": v.pair.row_id,
                    "criterion": v.pair.criterion,
                    "shown_first": "variant" if v.variant_first else "baseline",
                    "winner": v.side,
                    "reasoning": v.reasoning,
                    **({"error": v.error} if v.error else {}),
                }
                for v in verdicts
            ]
        return out

    async def _ask(self, pair: _Pair, variant_first: bool) -> tuple[_Verdict, list[Any]]:
        judge, template = self.ready()
        opts = self.options
        first, second = (pair.variant, pair.baseline) if variant_first else (pair.baseline, pair.variant)
        values = {
            **pair.inputs,
            "question": opts.question,
            "criterion": pair.criterion,
            "first": first,
            "second": second,
        }
        params: dict[str, Any] = {}
        if opts.json_schema:
            schema = {
                "type": "object",
                "properties": {"winner": {"enum": ["A", "B", "tie"]}, "reasoning": {"type": "string"}},
                "required": ["winner", "reasoning"],
                "additionalProperties": False,
            }
            params["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
        request = LLMRequest(
            system=opts.system_prompt,
            user=template.render(values),
            params=params,
            metadata={"row_id": pair.row_id, "criterion": pair.criterion, "purpose": f"judge:{self.name}"},
        )
        asked = await ask_json(judge, request, self.read, opts.retries)
        winner, reasoning = asked.value if asked.value is not None else (None, "")
        return _Verdict(pair, variant_first, winner, reasoning, asked.error), asked.calls
