"""Entry point of ``elspeth-observe-otel``: registers the ``opentelemetry`` observer by reference.

Imports only ``elspeth``, so ``elspeth plugins list`` never imports the OpenTelemetry SDK.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_observers(register: Registrar) -> None:
    """Register the ``opentelemetry`` observer."""
    register(
        "elspeth_observe_otel.observer:OpenTelemetryObserver",
        name="opentelemetry",
        description="Traces each row's path (processors, LLM attempts, validators, commit, sinks) over OTLP/HTTP.",
    )
