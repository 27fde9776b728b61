"""The cost-vs-volume chart's break-even labels never overlap, measured in Chromium."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from crossroads.report import render_report_html

from .browser import _chromium
from .conftest import require
from .test_report_render import CLAUDE, GPT, LLAMA, MISTRAL, _report

# Break-even points a few percent apart on lines that nearly meet: the report of issue 17
# had "952M" and "1.22B" printed over each other.
CROWDED = [
    (LLAMA, GPT, 9.52e8),
    (MISTRAL, GPT, 1.22e9),
    (LLAMA, CLAUDE, 1.05e9),
    (MISTRAL, CLAUDE, 1.1e9),
    (LLAMA, GPT, 8.7e8),
    (MISTRAL, CLAUDE, 1.3e9),
]


def _crowded_report() -> dict[str, Any]:
    report = _report()
    report["tco"]["break_even"] = [
        {"open": o, "closed": c, "volume_tokens_per_month": v, "sentence": f"{o} vs {c}"}
        for o, c, v in CROWDED
    ]
    return report


def _boxes(html: str, tmp_path: Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Rendered boxes of the break-even labels and of the markers' circles."""
    sync_api = require("playwright.sync_api", "pip install -e '.[dev]' (playwright)")
    page_file = tmp_path / "report.html"
    page_file.write_text(html, encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(page_file.as_uri())
            js = (
                "els => els.map(e => { const r = e.getBoundingClientRect(); "
                "return {x: r.x, y: r.y, w: r.width, h: r.height, text: e.textContent}; })"
            )
            labels = page.eval_on_selector_all("svg.chart text.be-label", js)
            circles = page.eval_on_selector_all("svg.chart g > circle[r='6.5']", js)
        finally:
            browser.close()
    return labels, circles


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_break_even_labels_never_overlap_in_chromium(tmp_path: Path) -> None:
    labels, circles = _boxes(render_report_html(_crowded_report()), tmp_path)
    assert sorted(lb["text"] for lb in labels) == sorted(
        ["952M", "1.22B", "1.05B", "1.1B", "870M", "1.3B"]
    )
    assert all(lb["w"] > 10 and lb["h"] > 5 for lb in labels)  # really rendered
    clashes = [
        (a["text"], b["text"]) for a, b in itertools.combinations(labels, 2) if _overlap(a, b)
    ]
    assert clashes == []
    # Nor does a label hide another break-even point.
    assert len(circles) == len(CROWDED)
    hidden = [
        (lb["text"], c["x"])
        for lb in labels
        for c in circles
        if _overlap(lb, c)
        and abs(c["x"] + c["w"] / 2 - (lb["x"] + lb["w"] / 2)) > 1  # not its own point
    ]
    assert hidden == []


def test_the_estimated_label_box_covers_the_rendered_text(tmp_path: Path) -> None:
    """The layout's box estimate (charts.label_box) is no smaller than Chromium's glyphs."""
    from crossroads.report.charts import label_box

    html = render_report_html(_crowded_report())
    labels, _ = _boxes(html, tmp_path)
    for lb in labels:
        x0, y0, x1, y1 = label_box(0.0, 0.0, lb["text"])
        assert lb["w"] <= x1 - x0, lb
        assert lb["h"] <= y1 - y0 + 1, lb


def test_labels_with_room_stay_just_above_their_point() -> None:
    html = render_report_html(_report())  # 133M and 600M: far apart
    pairs = re.findall(
        r'<circle cx="([\d.]+)" cy="([\d.]+)" r="6.5"[^>]*/>\s*'
        r'<text class="be-label" x="([\d.]+)" y="([\d.]+)"',
        html,
    )
    assert len(pairs) == 2
    for cx, cy, x, y in pairs:
        assert (float(x), float(y)) == (float(cx), pytest.approx(float(cy) - 12))
