"""What every judge shares: one JSON verdict asked through the run's LLM pipeline, and what its calls cost.

A judge's calls go through an :class:`elspeth.LLMPipeline` built by the run (``ctx.build_llm``), so
the run's middleware, controls, retries, response cache and spending ledger see them as they see the
experiment's own. A reply that is not the JSON the judge asked for is asked again (``retries``), the
rejected reply evicted from the response cache so the re-ask is a fresh call; after the last try the
verdict is None with the reason, and the row keeps its other scores.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from elspeth import LLMPipeline, LLMRequest, LLMResponse, PromptTemplate, check_template

__all__ = ["Asked", "JudgeSetup", "add_usage", "ask_json", "parse_object", "usage"]

T = TypeVar("T")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)


def parse_object(text: str) -> dict[str, Any]:
    """The JSON object a reply holds (a fenced ```json block is unwrapped).

    Raises:
        ValueError: the reply is not a JSON object; the message quotes its start.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos}): {text.strip()[:80]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object: {text.strip()[:80]!r}")
    return value


@dataclass
class Asked(Generic[T]):
    """One verdict: the value (None when every try was refused), why the last try was refused, and every call."""

    value: T | None
    error: str | None
    calls: list[LLMResponse] = field(default_factory=list)


async def ask_json(
    judge: LLMPipeline, request: LLMRequest, read: Callable[[dict[str, Any]], T], retries: int
) -> Asked[T]:
    """Ask ``request`` until ``read`` accepts the reply's JSON object, at most ``1 + retries`` times.

    ``read`` raises ``ValueError`` naming what is wrong (a score off the scale, a missing field).
    """
    asked: Asked[T] = Asked(None, None)
    for attempt in range(1, retries + 2):
        metadata = {**request.metadata, "validation_attempt": attempt}
        if attempt > 1:
            metadata["refresh_cache"] = True  # else the re-ask is answered with the reply just refused
        this = LLMRequest(system=request.system, user=request.user, params=dict(request.params), metadata=metadata)
        response = await judge.call(this)
        asked.calls.append(response)
        try:
            asked.value, asked.error = read(parse_object(response.content)), None
            return asked
        except ValueError as exc:
            asked.error = str(exc)
            await judge.discard(this)
    return asked


def usage(calls: Sequence[LLMResponse]) -> dict[str, Any]:
    """Calls, tokens, latency and (when priced) cost of a judge's calls; ``cached`` counts cache answers."""
    out: dict[str, Any] = {
        "calls": len(calls),
        "cached": sum(1 for r in calls if r.cached),
        "prompt_tokens": sum(r.usage.prompt_tokens for r in calls),
        "completion_tokens": sum(r.usage.completion_tokens for r in calls),
        "latency_s": round(sum(r.latency_s for r in calls), 6),
    }
    costs = [float(r.metrics["cost"]) for r in calls if r.metrics.get("cost") is not None]
    out["cost"] = math.fsum(costs) if costs else None
    return out


def add_usage(total: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Add one :func:`usage` into a running total (a cost stays None until one is known)."""
    for key in ("calls", "cached", "prompt_tokens", "completion_tokens"):
        total[key] = total.get(key, 0) + int(more.get(key) or 0)
    total["latency_s"] = round(total.get("latency_s", 0.0) + float(more.get("latency_s") or 0.0), 6)
    if more.get("cost") is not None:
        total["cost"] = (total.get("cost") or 0.0) + float(more["cost"])
    else:
        total.setdefault("cost", None)


class JudgeSetup:
    """What a judge does while the settings are checked: build its pipeline and check its prompt template.

    A judge's options have ``llm`` (None: the settings' own) and ``user_prompt``; the template may use
    the datasource's columns and the judge's ``FIELDS``.
    """

    FIELDS: tuple[str, ...] = ()

    def __init__(self, options: Any) -> None:
        self.options = options
        self._judge: LLMPipeline | None = None
        self._template: PromptTemplate | None = None

    def setup(self, setup: Any) -> None:
        """Build the judging pipeline and check the prompt template against the datasource's columns."""
        loc = (*setup.loc, "options")
        self._judge = setup.ctx.build_llm(self.options.llm, None, (*loc, "llm"), setup.checker)
        self._template = check_template(
            self.options.user_prompt, (*loc, "user_prompt"), setup.checker, setup.columns, self.FIELDS
        )

    def ready(self) -> tuple[LLMPipeline, PromptTemplate]:
        """The pipeline and template, or a clear error outside the experiment orchestrator."""
        if self._judge is None or self._template is None:
            raise RuntimeError(f"{type(self).__name__} was not set up: it runs only inside the experiment orchestrator")
        return self._judge, self._template
