"""Elspeth's report sinks: ``analytics_report`` (JSON and Markdown) and ``visual_report`` (one HTML page).

Configure them in the settings' ``sinks``::

    sinks:
      - plugin: analytics_report
        options: {formats: [json, md]}
      - plugin: visual_report
        options: {path: report.html}
"""

from elspeth_reports.__about__ import __version__ as __version__
from elspeth_reports.analytics import AnalyticsReportSink
from elspeth_reports.summary import build_summary
from elspeth_reports.visual import VisualReportSink

__all__ = ["AnalyticsReportSink", "VisualReportSink", "build_summary"]
