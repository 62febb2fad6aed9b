"""Analysis of campaign files: report (plots + Markdown), GP partial dependence."""

from microdesign.analysis.report import partial_dependence, write_report

__all__ = ["partial_dependence", "write_report"]
