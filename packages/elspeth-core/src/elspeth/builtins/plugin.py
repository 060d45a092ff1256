"""Core's builtin plugins, registered by reference: listing them imports none of their modules.

Each class below is one builtin source (its label is the class's name), registered through the same
hooks as an installed distribution. The plugin classes are imported when first used.
"""

from __future__ import annotations

from elspeth.hookspecs import hookimpl
from elspeth.registrars import ControlRegistrar, Registrar

__all__ = ["cache", "controls", "datasources", "executors", "llm_clients", "middleware", "sinks"]

_B = "elspeth.builtins"


class datasources:
    """The builtin datasource."""

    @staticmethod
    @hookimpl
    def register_datasources(register: Registrar) -> None:
        """Register the builtin datasources."""
        register(
            f"{_B}.datasources:CsvDataSource", name="csv", description="Rows from a local CSV file with a header line."
        )


class sinks:
    """The builtin sinks."""

    @staticmethod
    @hookimpl
    def register_sinks(register: Registrar) -> None:
        """Register the builtin sinks."""
        register(
            f"{_B}.sinks:CsvSink",
            name="csv",
            description="Records as a CSV file, one row per record; failures optionally in a second file.",
        )
        register(
            f"{_B}.sinks:JsonlSink",
            name="jsonl",
            description="Records and failures as JSON Lines, one object per row with a ``status`` of ``ok`` "
            "or ``failed``.",
        )
        register(
            f"{_B}.sinks:JsonSummarySink",
            name="json",
            description="The run's metadata, aggregates and failures as one JSON document.",
        )


class llm_clients:
    """The builtin LLM clients."""

    @staticmethod
    @hookimpl
    def register_llm_clients(register: Registrar) -> None:
        """Register the builtin LLM clients."""
        register(
            f"{_B}.llm_clients:MockClient",
            name="mock",
            description="Deterministic replies from a hash of the prompts and a seed, with a score in "
            "[score_min, score_max].",
        )
        register(
            f"{_B}.llm_clients:StaticClient", name="static", description="The same configured reply for every request."
        )


class middleware:
    """The builtin LLM middleware."""

    @staticmethod
    @hookimpl
    def register_llm_middleware(register: Registrar) -> None:
        """Register the builtin middleware."""
        register(
            f"{_B}.middleware:AuditLogger",
            name="audit_logger",
            description="A JSON Lines audit trail of every LLM request and response (secrets never written).",
        )
        register(
            f"{_B}.middleware:PromptShield",
            name="prompt_shield",
            description="Refuses, masks or logs denied terms and patterns in prompts (and optionally responses).",
        )
        register(
            f"{_B}.middleware:HealthMonitor",
            name="health_monitor",
            description="Counts requests and failures, tracks latency percentiles, and logs a periodic heartbeat.",
        )


class controls:
    """The builtin rate limiters and cost tracker."""

    @staticmethod
    @hookimpl
    def register_controls(register: ControlRegistrar) -> None:
        """Register the builtin controls."""
        register(
            f"{_B}.controls:FixedWindow",
            kind="rate_limiter",
            name="fixed_window",
            description="At most ``requests`` calls in each window of ``per_seconds``.",
        )
        register(
            f"{_B}.controls:TokenBucket",
            kind="rate_limiter",
            name="token_bucket",
            description="Requests and (optionally) tokens per minute, as two token buckets refilled continuously.",
        )
        register(
            f"{_B}.adaptive:Adaptive",
            kind="rate_limiter",
            name="adaptive",
            description="Paces calls per endpoint and key: slow start to the capacity, then AIMD; honours Retry-After.",
        )
        register(
            f"{_B}.controls:PriceTable",
            kind="cost_tracker",
            name="price_table",
            description="Prices every call from a per-model table; optionally stops the run at a budget.",
        )


class cache:
    """The builtin utility ``response_cache``; the cache itself is host code, in :mod:`elspeth.cache`."""

    @staticmethod
    @hookimpl
    def register_utilities(register: Registrar) -> None:
        """Register the builtin utilities."""
        register(
            "elspeth.cache:ResponseCache",
            name="response_cache",
            description="Answers a call from a local cache when the same call was made before.",
        )


class executors:
    """The builtin executor ``local``; the executor itself is host code, in :mod:`elspeth.orchestration.local`."""

    @staticmethod
    @hookimpl
    def register_executors(register: Registrar) -> None:
        """Register the builtin executors."""
        register(
            "elspeth.orchestration.local:LocalExecutor",
            name="local",
            description="Runs the orchestrator in this process, on one asyncio event loop (the default).",
        )
