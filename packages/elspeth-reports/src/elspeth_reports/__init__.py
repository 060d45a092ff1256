"""Elspeth's report sinks: ``analytics_report`` (JSON and Markdown) and ``visual_report`` (one HTML page).

Configure them in the settings' ``sinks``::

    sinks:
      - plugin: analytics_report
        options: {formats: [json, md]}
      - plugin: visual_report
        options: {path: report.html}
"""

import importlib
from typing import TYPE_CHECKING, Any

from elspeth_reports.__about__ import __version__ as __version__

if TYPE_CHECKING:
    from elspeth_reports.analytics import AnalyticsReportSink
    from elspeth_reports.summary import build_summary
    from elspeth_reports.visual import VisualReportSink

# names load on first use, so that importing the package (its entry point is ``elspeth_reports.plugin``) stays cheap
_LAZY = {
    "AnalyticsReportSink": "elspeth_reports.analytics",
    "VisualReportSink": "elspeth_reports.visual",
    "build_summary": "elspeth_reports.summary",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elspeth_reports' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["AnalyticsReportSink", "VisualReportSink", "build_summary"]
