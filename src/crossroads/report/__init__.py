"""The decision report: one self-contained HTML page, its Markdown twin and the raw JSON."""

from .render import DEFAULT_DIMENSIONS, render_report_html, render_report_markdown, write_report

__all__ = ["DEFAULT_DIMENSIONS", "render_report_html", "render_report_markdown", "write_report"]
