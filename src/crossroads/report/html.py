"""The decision report as one self-contained, printable HTML page.

No external resources: inline CSS, the inline SVG charts of :mod:`.charts` and a few lines
of vanilla JS (open ``<details>`` before printing; ``#chart=cost`` / ``#chart=quality``
shows that chart alone, at the top left, for screenshots). Jinja2 renders it with
autoescape on: every string in the report is untrusted (model names, notes, evidence,
sources, the manifest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .._pages import page_template, strict_dumps
from ..decide.decision import DecisionReport
from .view import build_view

__all__ = ["as_report", "render_report_html"]

_TEMPLATE = "report.html.j2"


def as_report(report: DecisionReport | Mapping[str, Any]) -> DecisionReport:
    """The typed report; a mapping (``report.json`` read back, or written by hand) is
    validated forgivingly (see :mod:`crossroads.decide.decision`)."""
    if isinstance(report, DecisionReport):
        return report
    return DecisionReport.model_validate(report if isinstance(report, dict) else dict(report))


def render_report_html(report: DecisionReport | Mapping[str, Any]) -> str:
    """The decision report as one self-contained, printable HTML page."""
    view = build_view(as_report(report))
    manifest = view.manifest
    return page_template("crossroads.report", _TEMPLATE).render(
        **{f.name: getattr(view, f.name) for f in fields(view)},
        manifest_json=strict_dumps(manifest, indent=2, sort_keys=True) if manifest else "",
    )
