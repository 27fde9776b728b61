"""The three report files: ``report.html``, ``report.md`` and ``report.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._pages import strict_dumps
from ..decide.decision import DecisionReport
from .html import as_report, render_report_html
from .markdown import render_report_markdown

__all__ = ["write_report"]


def write_report(report: DecisionReport | Mapping[str, Any], out: Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``report.json`` into the directory ``out``.

    ``report.json`` holds the report as given: a :class:`DecisionReport` in its field order,
    a mapping as it is (strict JSON: NaN and infinities become null).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "report.html",
        "markdown": out / "report.md",
        "json": out / "report.json",
    }
    typed = as_report(report)
    data = report.model_dump(mode="json") if isinstance(report, DecisionReport) else report
    paths["html"].write_text(render_report_html(typed), encoding="utf-8")
    paths["markdown"].write_text(render_report_markdown(typed), encoding="utf-8")
    paths["json"].write_text(strict_dumps(data, indent=2) + "\n", encoding="utf-8")
    return paths
