"""The builtin middleware through the middleware contract, each opened and closed as a run does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from elspeth import LLMPipeline, PluginContext
from elspeth.builtins.middleware import AuditLogger, HealthMonitor, PromptShield
from elspeth_testing import EchoClient, MiddlewareContract, run_async, sample_request


class TestAuditLoggerContract(MiddlewareContract):
    plugin_class = AuditLogger

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"path": "audit/trail.jsonl", "include_prompts": True, "include_responses": True}

    def test_the_trail_records_every_call(self, plugin: Any, plugin_context: PluginContext) -> None:
        pipeline = LLMPipeline(EchoClient(), [plugin])

        async def main() -> None:
            await asyncio.gather(*(pipeline.call(sample_request(f"q{i}", row_id=f"r{i}")) for i in range(5)))

        run_async(main())
        plugin.close()
        lines = (plugin_context.output_dir / "audit" / "trail.jsonl").read_text(encoding="utf-8").splitlines()
        assert {json.loads(line)["row_id"] for line in lines} == {f"r{i}" for i in range(5)}


class TestPromptShieldMaskingContract(MiddlewareContract):
    plugin_class = PromptShield

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"denied_terms": ["password"], "on_violation": "mask", "check_response": True}


class TestHealthMonitorContract(MiddlewareContract):
    plugin_class = HealthMonitor

    @pytest.fixture
    def plugin_options(self) -> dict[str, Any]:
        return {"heartbeat_interval_s": 0}
