"""Entry point of ``elspeth-observe-prometheus``: registers the ``prometheus`` observer by reference.

Imports only ``elspeth``, so ``elspeth plugins list`` never imports prometheus_client.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_observers(register: Registrar) -> None:
    """Register the ``prometheus`` observer."""
    register(
        "elspeth_observe_prometheus.observer:PrometheusObserver",
        name="prometheus",
        description="Live run metrics on /metrics: rows, failures by stage, LLM latency, tokens, cost, retries.",
    )
