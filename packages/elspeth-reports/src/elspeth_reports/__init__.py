"""Elspeth's report sinks: ``analytics_report`` (JSON and Markdown) and ``visual_report`` (one HTML page).

Configure them in the settings' ``sinks``::

    sinks:
      - plugin: analytics_report
        options: {formats: [json, md]}
      - plugin: visual_report
        options: {path: report.html}
"""

from typing import TYPE_CHECKING

from elspeth import lazy_exports
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


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["AnalyticsReportSink", "VisualReportSink", "build_summary"]
