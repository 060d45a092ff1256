"""``rubric_judge``: an LLM scores each response on a stated scale against a rubric, and says why.

The judge must answer with a JSON object ``{"score": N, "reasoning": "..."}``; a score off the scale
(or not a whole number when ``integer``), a missing reasoning or a reply that is not JSON is refused
and asked again (``retries``). What it writes into the record's metrics:

- ``judge_scores`` (``score_field``): the score per criterion, None when the judge never gave a valid one;
- ``judge_flags`` (``flag_field``), with a ``threshold``: whether the score reached it;
- ``judge_<label>``: the reasoning and any refusal per criterion, and the judge's calls, tokens,
  latency and cost. The experiment's own ``cost`` does not include them: ``judge_cost`` adds them up.

The record is committed with these metrics, so a resumed run does not ask the judge again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from elspeth import LLMRequest, LLMResponse, PluginRef, Row
from elspeth_judges._calls import JudgeSetup, add_usage, ask_json, usage

__all__ = ["RubricJudge", "Verdict"]

DEFAULT_SYSTEM = (
    "You are an impartial grader. Score the response against the rubric. Answer with only a JSON object: "
    '{"score": <number>, "reasoning": "<one or two sentences>"}.'
)
DEFAULT_USER = (
    "Rubric: {{ rubric }}\nScale: {{ scale_min }} (worst) to {{ scale_max }} (best).\n\n"
    "Criterion: {{ criterion }}\n\nResponse:\n{{ response }}"
)
FIELDS = ("response", "criterion", "rubric", "scale_min", "scale_max")


class Verdict(BaseModel):
    """A rubric judge's validated answer."""

    score: float
    reasoning: str


class RubricOptions(BaseModel):
    """Options of ``rubric_judge``."""

    model_config = ConfigDict(extra="forbid")

    rubric: str = Field(min_length=1, description="what the judge scores against, in words")
    llm: PluginRef | None = Field(None, description="the judging client {plugin, options} (default: the run's `llm`)")
    scale_min: float = Field(1, description="the lowest score of the scale")
    scale_max: float = Field(5, description="the highest score of the scale")
    integer: bool = Field(True, description="scores must be whole numbers")
    threshold: float | None = Field(None, description="a score at least this passes (writes `flag_field`)")
    criteria: list[str] | None = Field(None, description="judge only these criteria' responses (default: all)")
    system_prompt: str = Field(DEFAULT_SYSTEM, description="the judge's system prompt")
    user_prompt: str = Field(
        DEFAULT_USER,
        description="the judge's user prompt template; fields: the row's columns, `response`, `criterion`, "
        "`rubric`, `scale_min`, `scale_max`",
    )
    json_schema: bool = Field(
        False,
        description="ask for the verdict's JSON schema as the request's `response_format` (OpenAI-compatible clients)",
    )
    retries: int = Field(1, ge=0, le=5, description="times to ask again when the verdict is not valid JSON on scale")
    label: str = Field("rubric", pattern=r"^[A-Za-z0-9_]+$", description="names the `judge_<label>` metric")
    score_field: str = Field("judge_scores", description="the record metric for the scores per criterion")
    flag_field: str = Field("judge_flags", description="the record metric for the pass flags per criterion")

    @model_validator(mode="after")
    def _scale(self) -> RubricOptions:
        if self.scale_min >= self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min:g}) must be below scale_max ({self.scale_max:g})")
        if self.threshold is not None and not self.scale_min <= self.threshold <= self.scale_max:
            raise ValueError(f"threshold {self.threshold:g} is off the scale {self.scale_min:g} to {self.scale_max:g}")
        return self


class RubricJudge(JudgeSetup):
    """Scores each criterion's response with an LLM judge on a stated scale, with its reasoning."""

    name = "rubric_judge"
    Options = RubricOptions

    FIELDS = FIELDS
    options: RubricOptions

    def read(self, value: Mapping[str, Any]) -> Verdict:
        """The verdict in ``value``, or ``ValueError`` naming what breaks the rules."""
        opts = self.options
        score = value.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"'score' must be a number, got {score!r}")
        if not opts.scale_min <= score <= opts.scale_max:
            raise ValueError(f"score {score:g} is off the scale {opts.scale_min:g} to {opts.scale_max:g}")
        if opts.integer and score != int(score):
            raise ValueError(f"score {score:g} is not a whole number")
        reasoning = value.get("reasoning")
        if not isinstance(reasoning, str) or not reasoning.strip():
            raise ValueError("'reasoning' must be a non-empty string")
        return Verdict(score=float(score), reasoning=reasoning.strip())

    def _params(self) -> dict[str, Any]:
        if not self.options.json_schema:
            return {}
        kind = "integer" if self.options.integer else "number"
        schema = {
            "type": "object",
            "properties": {"score": {"type": kind}, "reasoning": {"type": "string"}},
            "required": ["score", "reasoning"],
            "additionalProperties": False,
        }
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "rubric_verdict", "schema": schema}}}

    async def process_row(self, row: Row, responses: Mapping[str, LLMResponse]) -> dict[str, Any]:
        """Judge every chosen criterion's response (concurrently); see the module's docstring for the metrics."""
        self.ready()
        opts = self.options
        chosen = [c for c in responses if opts.criteria is None or c in opts.criteria]
        asked = await asyncio.gather(*(self._ask(row, c, responses[c]) for c in chosen))
        scores: dict[str, float | None] = {}
        detail: dict[str, Any] = {"reasoning": {}, "errors": {}}
        spent: dict[str, Any] = {}
        for criterion, verdict in zip(chosen, asked, strict=True):
            scores[criterion] = verdict.value.score if verdict.value is not None else None
            if verdict.value is not None:
                detail["reasoning"][criterion] = verdict.value.reasoning
            else:
                detail["errors"][criterion] = verdict.error
            add_usage(spent, usage(verdict.calls))
        out: dict[str, Any] = {opts.score_field: scores, f"judge_{opts.label}": {**detail, **spent}}
        if opts.threshold is not None:
            out[opts.flag_field] = {c: s is not None and s >= opts.threshold for c, s in scores.items()}
        return out

    async def _ask(self, row: Row, criterion: str, response: LLMResponse) -> Any:
        judge, template = self.ready()
        opts = self.options
        values = {
            **row.data,
            "response": response.content,
            "criterion": criterion,
            "rubric": opts.rubric,
            "scale_min": f"{opts.scale_min:g}",
            "scale_max": f"{opts.scale_max:g}",
        }
        request = LLMRequest(
            system=opts.system_prompt,
            user=template.render(values),
            params=self._params(),
            metadata={"row_id": row.id, "criterion": criterion, "purpose": f"judge:{self.name}"},
        )
        return await ask_json(judge, request, self.read, opts.retries)
