"""Analysis of campaign files: report (plots + Markdown), GP partial dependence."""

from microdesign.analysis.report import best_trace, partial_dependence, write_report

__all__ = ["best_trace", "partial_dependence", "write_report"]
