"""The LLM call path: middleware, rate limiter, client, middleware again in reverse, cost tracker."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from elspeth._sync import call
from elspeth.types import LLMRequest, LLMResponse

__all__ = ["LLMPipeline"]


class LLMPipeline:
    """One LLM client wrapped in its middleware and controls.

    Args:
        client: the LLM client plugin.
        middleware: middleware plugins, outermost first: ``before_request`` runs in this order,
            ``after_response`` in reverse.
        rate_limiter: waits before each call, if given.
        cost_tracker: prices each response, if given; the cost lands in ``response.metrics["cost"]``.
        name: the client's plugin name, for records and errors.

    """

    def __init__(
        self,
        client: Any,
        middleware: Sequence[Any] = (),
        rate_limiter: Any | None = None,
        cost_tracker: Any | None = None,
        name: str = "llm",
    ) -> None:
        self.client = client
        self.name = name
        self.rate_limiter = rate_limiter
        self.cost_tracker = cost_tracker
        self._before = [m.before_request for m in middleware if hasattr(m, "before_request")]
        self._after = [m.after_response for m in reversed(middleware) if hasattr(m, "after_response")]

    async def call(self, request: LLMRequest) -> LLMResponse:
        """Send ``request`` through the whole chain and return the final response.

        Exceptions from any stage propagate; the orchestrator records them as row failures.
        """
        for before in self._before:
            request = await call(before, request)
        if self.rate_limiter is not None:
            await call(self.rate_limiter.acquire, request)
        started = time.perf_counter()
        response: LLMResponse = await call(self.client.generate, request)
        response.latency_s = time.perf_counter() - started
        for after in self._after:
            response = await call(after, request, response)
        if self.cost_tracker is not None:
            cost = await call(self.cost_tracker.record, request, response)
            if cost is not None:
                response.metrics["cost"] = cost
        return response

    def cost_summary(self) -> Mapping[str, Any] | None:
        """The cost tracker's totals, if there is one."""
        if self.cost_tracker is None:
            return None
        return dict(self.cost_tracker.summary())
