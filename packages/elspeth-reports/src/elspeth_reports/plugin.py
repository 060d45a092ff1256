"""Entry point of ``elspeth-reports``: registers the ``analytics_report`` and ``visual_report`` sinks.

Imports only ``elspeth``, pydantic and the two small sink modules; the renderers load when a report is written.
"""

from __future__ import annotations

from elspeth import Registrar, hookimpl
from elspeth_reports.analytics import AnalyticsReportSink
from elspeth_reports.visual import VisualReportSink


@hookimpl
def register_sinks(register: Registrar) -> None:
    """Register the report sinks."""
    register(AnalyticsReportSink)
    register(VisualReportSink)
