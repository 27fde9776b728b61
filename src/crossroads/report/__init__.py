"""The decision report: one self-contained HTML page, its Markdown twin and the raw JSON.

:mod:`.view` turns a :class:`~crossroads.decide.decision.DecisionReport` into printable
text, :mod:`.charts` into SVG geometry; :mod:`.html` and :mod:`.markdown` render them and
:mod:`.files` writes all three files. :mod:`.compare` runs ``crossroads compare`` end to end.
"""

from .files import write_report
from .html import render_report_html
from .markdown import render_report_markdown
from .view import DEFAULT_DIMENSIONS

__all__ = ["DEFAULT_DIMENSIONS", "render_report_html", "render_report_markdown", "write_report"]
