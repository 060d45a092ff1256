"""The sink contract every Elspeth sink passes, for both report sinks."""

from __future__ import annotations

from elspeth_reports import AnalyticsReportSink, VisualReportSink
from elspeth_testing import SinkContract


class TestAnalyticsReportContract(SinkContract):
    plugin_class = AnalyticsReportSink
    writes_records = False  # a summary: failures are listed by row, finished rows only counted


class TestVisualReportContract(SinkContract):
    plugin_class = VisualReportSink
    writes_records = False  # charts and key figures, not a row listing
