"""Reports: the desk's numbers over a date range, by department, agent, channel or tag (see metrics.py)."""

from core.reports.metrics import BUCKETS, GROUPINGS, METRICS, Report, ReportRequest, ReportRow, build_report

__all__ = ["BUCKETS", "GROUPINGS", "METRICS", "Report", "ReportRequest", "ReportRow", "build_report"]
