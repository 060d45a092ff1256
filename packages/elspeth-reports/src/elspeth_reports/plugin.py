"""Entry point of ``elspeth-reports``: registers the ``analytics_report`` and ``visual_report`` sinks.

Imports only ``elspeth``: the sinks are registered by reference and load when first used, the renderers
when a report is written.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the report sinks."""
    register(
        "elspeth_reports.analytics:AnalyticsReportSink",
        name="analytics_report",
        description="A summary to read or send on: rows, failures, retries, cost, aggregates, baseline "
        "comparisons, recommendation.",
    )
    register(
        "elspeth_reports.visual:VisualReportSink",
        name="visual_report",
        description="One HTML file that opens offline: score distributions, a forest plot of differences, cost "
        "and latency charts.",
    )
