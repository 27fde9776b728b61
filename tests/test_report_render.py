"""The decision report: three files, no external resources, escaping, the Markdown twin, a
nearly empty report, and a real render in headless Chromium (no console errors, the cost and
quality charts drawn where ``#chart=cost`` / ``#chart=quality`` puts them)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from crossroads.report import (
    DEFAULT_DIMENSIONS,
    render_report_html,
    render_report_markdown,
    write_report,
)

from .browser import CHROMIUM_FLAGS, _chromium, _near, _pixels, _region

EVIL = "<script>alert(1)</script>"
EVIL_ATTR = '"><img src=x onerror="alert(2)">'
SOURCE_URL = "https://www.anthropic.com/news/claude-3-5-sonnet"

LLAMA, MISTRAL, GPT, CLAUDE = "llama-3.1-70b", "mistral-7b", "gpt-4o", "claude-3-5-sonnet"
MODELS = [LLAMA, MISTRAL, GPT, CLAUDE]
VOLUMES = [1e6, 1e7, 1e8, 1e9, 1e10, 1e11]
CURVES = {
    LLAMA: [3000.0, 3000.0, 3000.0, 3400.0, 9000.0, 60000.0],
    MISTRAL: [800.0, 800.0, 800.0, 950.0, 2500.0, 18000.0],
    GPT: [5.0, 50.0, 500.0, 5000.0, 50000.0, 500000.0],
    CLAUDE: [6.0, 60.0, 600.0, 6000.0, 60000.0, 600000.0],
}
BREAK_EVEN_1 = "Self-hosting Llama 3.1 70B is cheaper than GPT-4o above 600M tokens/month."
BREAK_EVEN_2 = "Self-hosting Mistral 7B is cheaper than Claude 3.5 Sonnet above 133M tokens/month."
SUMMARY = (
    "At 250M tokens a month GPT-4o is the best fit: it scores highest on the organisation's "
    "weighted dimensions and costs less than running Llama 3.1 70B on your own GPUs."
)
FLIP_SUMMARY = "Above 600M tokens/month, Llama 3.1 70B self-hosted takes the lead."
SCORES = {  # model → ten dimension scores, in DEFAULT_DIMENSIONS order
    LLAMA: [6.0, 9.0, 8.5, 7.5, 4.0, 5.0, 4.5, 8.0, 9.5, 7.0],
    MISTRAL: [8.0, 9.0, 8.5, 5.0, 5.0, 5.5, 4.5, 7.5, 9.5, 6.5],
    GPT: [7.0, 4.0, 2.0, 9.0, 9.5, 9.5, 8.5, 6.0, 3.0, 4.0],
    CLAUDE: [6.5, 4.0, 2.0, 8.5, 9.5, 9.5, 8.5, 6.0, 3.0, 4.5],
}


def _model(name: str, kind: str, measured: bool, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "catalog_id": f"catalog/{name}",
        "display": name,
        "kind": kind,
        "measured": measured,
        "licence": "proprietary" if kind == "closed" else "Apache-2.0",
        "params_b": None,
        "context_window": 128_000,
        "quality": None,
        "latency_p50_s": None,
        "latency_p95_s": None,
        "tokens_per_s": None,
        "monthly_cost_usd": None,
        "cost_per_1m_usd": None,
        "published_benchmarks": [],
        "note": None,
    }
    return base | kw


def _report() -> dict[str, Any]:
    dims = list(DEFAULT_DIMENSIONS)
    return {
        "generated": "2025-03-01T12:00:00+00:00",
        "title": "Support assistant: open or closed?",
        "profile": {
            "name": "regulated-support",
            "description": "EU customer support, personal data, moderate volume.",
            "weights": {d: round(0.1 + 0.01 * i, 2) for i, d in enumerate(dims)},
            "constraints": {"data_residency": "EU", "max_gpus": 2, "max_p95_s": 4.0},
        },
        "volume": {"tokens_per_month": 2.5e8, "input_share": 0.7},
        "recommendation": {"model": GPT, "summary": SUMMARY, "flip_summary": FLIP_SUMMARY},
        "models": [
            _model(
                LLAMA,
                "open",
                True,
                display="Llama 3.1 70B Instruct",
                licence="Llama 3.1 Community",
                params_b=70.0,
                quality={"mean": 0.81, "ci_low": 0.76, "ci_high": 0.86, "pass_rate": 0.79},
                latency_p50_s=0.92,
                latency_p95_s=2.1,
                tokens_per_s=38.5,
                monthly_cost_usd=3150.0,
                cost_per_1m_usd=12.6,
            ),
            _model(
                MISTRAL,
                "open",
                False,
                display="Mistral 7B Instruct",
                params_b=7.2,
                context_window=32_768,
                monthly_cost_usd=840.0,
                cost_per_1m_usd=3.36,
                note=f"not measured here: no free GPU {EVIL}",
                published_benchmarks=[
                    {
                        "name": "MMLU",
                        "score": 62.5,
                        "source": "Mistral model card",
                        "as_of": "2023-09",
                    }
                ],
            ),
            _model(
                GPT,
                "closed",
                True,
                display="GPT-4o",
                quality={"mean": 0.86, "ci_low": 0.82, "ci_high": 0.90, "pass_rate": 0.84},
                latency_p50_s=0.61,
                latency_p95_s=1.4,
                tokens_per_s=92.0,
                monthly_cost_usd=1250.0,
                cost_per_1m_usd=5.0,
            ),
            _model(
                CLAUDE,
                "closed",
                False,
                display=f"Claude 3.5 Sonnet {EVIL_ATTR}",
                context_window=200_000,
                monthly_cost_usd=1500.0,
                cost_per_1m_usd=6.0,
                note="not measured here: no API key",
                published_benchmarks=[
                    {"name": "MMLU", "score": 88.7, "source": SOURCE_URL, "as_of": "2024-06"},
                    {"name": "HumanEval", "score": 92.0, "source": SOURCE_URL, "as_of": "2024-06"},
                ],
            ),
        ],
        "dimensions": {
            "names": dict(DEFAULT_DIMENSIONS),
            "scores": {
                m: {
                    d: {"score": s, "evidence": [f"{m} {d} evidence", f"seed article: {d}"]}
                    for d, s in zip(dims, SCORES[m], strict=True)
                }
                for m in MODELS
            },
        },
        "quality": {
            "suite": "support",
            "run_id": "run-20250301-abc123",
            "pairs": [
                {
                    "a": GPT,
                    "b": LLAMA,
                    "verdict": "no significant difference (95% CI -0.02 to 0.12)",
                    "significant": False,
                }
            ],
        },
        "tco": {
            "volumes": VOLUMES,
            "curves": CURVES,
            "break_even": [
                {"open": LLAMA, "closed": GPT, "volume_tokens_per_month": 6e8}
                | {"sentence": BREAK_EVEN_1},
                {"open": MISTRAL, "closed": CLAUDE, "volume_tokens_per_month": 1.333e8}
                | {"sentence": BREAK_EVEN_2},
            ],
            "assumptions": [
                "GPU rental at $2.50/h per H100, 70% utilisation.",
                "API list prices as of 2025-03-01, 70% input tokens.",
            ],
        },
        "advice": {
            "ranking": [
                {"model": GPT, "score": 7.12, "reasons": ["highest measured quality"]},
                {"model": LLAMA, "score": 6.95, "reasons": ["full control", "EU hosting"]},
                {"model": CLAUDE, "score": 6.80, "reasons": ["not measured here"]},
                {"model": MISTRAL, "score": 6.41, "reasons": ["cheapest"]},
            ],
            "excluded": [
                {"model": "falcon-180b", "reasons": ["needs 8 GPUs; the constraint is 2"]}
            ],
            "flip_points": [
                {
                    "parameter": "tokens_per_month",
                    "current": 2.5e8,
                    "flip_at": 6e8,
                    "new_top": LLAMA,
                    "sentence": "Above 600M tokens/month Llama 3.1 70B comes first.",
                },
                {
                    "parameter": "weight: control",
                    "current": 0.18,
                    "flip_at": 0.31,
                    "new_top": LLAMA,
                    "sentence": "If control weighs 0.31 or more, Llama 3.1 70B comes first.",
                },
            ],
        },
        "manifest": {
            "crossroads": "0.1.0",
            "seed": 1234,
            "prices_as_of": "2025-03-01",
            "note": EVIL,
            "weird": float("nan"),
        },
    }


class _Scan(HTMLParser):
    """Scripts, URL-carrying attributes and on*= handlers of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self.handlers: list[str] = []
        self.tags: set[str] = set()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "action", "formaction", "poster", "data"}:
                self.urls.append(value or "")
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if name == "id":
                self.ids.append(value or "")
        if tag == "script":
            self.scripts.append(dict(attrs))


@pytest.fixture(scope="module")
def page() -> str:
    return render_report_html(_report())


def test_write_report_writes_three_files(tmp_path: Path) -> None:
    paths = write_report(_report(), tmp_path / "out")
    assert set(paths) == {"html", "markdown", "json"}
    assert [p.name for p in paths.values()] == ["report.html", "report.md", "report.json"]
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in paths.values())
    assert paths["html"].read_text("utf-8").startswith("<!DOCTYPE html>")
    assert SUMMARY in paths["markdown"].read_text("utf-8")
    data = json.loads(paths["json"].read_text("utf-8"))  # strict JSON: NaN became null
    assert data["title"] == _report()["title"] and data["manifest"]["weird"] is None
    assert data["tco"]["curves"][GPT] == CURVES[GPT]


def test_no_external_resources(page: str) -> None:
    scan = _Scan()
    scan.feed(page)
    assert all(u.startswith("#") for u in scan.urls), scan.urls  # in-page links only
    assert scan.scripts == [{}]  # one inline script, no src
    assert not scan.tags & {"link", "img", "iframe", "object", "embed", "image", "use"}
    assert not re.search(r"@import|url\(|//cdn|@font-face", page, re.I)
    # A source URL is shown as text, never as something to load or follow.
    assert SOURCE_URL in page
    assert not re.search(r"=\s*[\"']?https?://", page)


def test_untrusted_text_is_escaped(page: str) -> None:
    assert EVIL not in page and "alert(1)</script>" not in page
    assert html.escape(EVIL, quote=False) in page
    assert "<img" not in page and 'onerror="alert' not in page
    assert "Claude 3.5 Sonnet &#34;&gt;&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    scan = _Scan()
    scan.feed(page)
    assert scan.handlers == []
    assert page.lower().count("<script") == 1
    assert "NaN" not in page


def test_html_sections_and_charts(page: str) -> None:
    # Executive summary first, with the recommendation.
    summary_at = page.index('id="summary"')
    assert summary_at < page.index('id="dimensions"') < page.index('id="quality"')
    assert page.index('id="quality"') < page.index('id="latency"') < page.index('id="cost"')
    assert page.index('id="cost"') < page.index('id="flips"') < page.index('id="excluded"')
    assert page.index('id="excluded"') < page.index('id="assumptions"') < page.index('"manifest"')
    assert escape(SUMMARY) in page and escape(FLIP_SUMMARY) in page
    assert '<div class="model-name">GPT-4o' in page
    # Ten dimensions × four models, tinted, with evidence; unmeasured models are marked.
    assert page.count("<tr data-dim=") == 10
    for name in DEFAULT_DIMENSIONS.values():
        assert f'<td class="dim">{name}</td>' in page
    assert page.count('<td class="score" style="background-color: hsl(') == 40
    assert f"{LLAMA} control evidence" in page and "<details><summary>9.5</summary>" in page
    assert "not measured here: no API key" in page
    assert page.count('<span class="badge nm"') >= 4
    # Quality: bars with whiskers, published benchmarks with their source, the verdict.
    assert 'id="quality-chart"' in page and "0.86 [0.82–0.90]" in page
    assert "HumanEval" in page and "Mistral model card" in page
    assert "no significant difference (95% CI -0.02 to 0.12)" in page
    # Latency, cost chart (log-log, four lines, two break-even markers), sentences.
    assert "920 ms" in page and "38.5" in page and "32,768" in page and "7.2B" in page
    assert 'id="cost-chart"' in page and page.count("<polyline") == 4
    assert page.count('class="be-label"') == 2 and ">600M</text>" in page
    for tick in (">1M</text>", ">100M</text>", ">10B</text>", ">$1k</text>", ">$100k</text>"):
        assert tick in page, tick
    assert "Tokens per month (log scale)" in page and "your volume: 250M" in page
    assert BREAK_EVEN_1 in page and BREAK_EVEN_2 in page
    # Flip points, excluded option, assumptions, sources, manifest.
    assert "If control weighs 0.31 or more" in page and ">600M</td>" in page
    assert "falcon-180b" in page and "needs 8 GPUs" in page
    assert "GPU rental at $2.50/h" in page and "as of 2024-06" in page
    assert "&#34;prices_as_of&#34;: &#34;2025-03-01&#34;" in page


def test_markdown(tmp_path: Path) -> None:
    md = render_report_markdown(_report())
    assert md.startswith("# Support assistant: open or closed?\n")
    assert "**GPT-4o** (closed)" in md and SUMMARY in md and FLIP_SUMMARY in md
    headers = re.search(r"^\| Dimension \| Weight \| (.*) \|$", md, re.M)
    assert headers and headers.group(1).split(" | ") == [
        "GPT-4o",
        "Llama 3.1 70B Instruct",
        'Claude 3.5 Sonnet "&gt;&lt;img src=x onerror="alert(2)"&gt; (not measured here)',
        "Mistral 7B Instruct (not measured here)",
    ]
    weights = _report()["profile"]["weights"]
    for i, (key, name) in enumerate(DEFAULT_DIMENSIONS.items()):
        cells = [f"{SCORES[m][i]:.1f}" for m in (GPT, LLAMA, CLAUDE, MISTRAL)]
        assert f"| {name} | {weights[key]:.3g} | {' | '.join(cells)} |" in md, name
    assert "| **Weighted score** |   | 7.12 | 6.95 | 6.80 | 6.41 |" in md
    assert f"- {BREAK_EVEN_1} (600M tokens/month)" in md
    assert f"- {BREAK_EVEN_2} (133M tokens/month)" in md
    assert "| 1M | $5.00 | $3,000 | $6.00 | $800 |" in md  # the curves as numbers
    for heading in (
        "## Recommendation",
        "## Ten dimensions",
        "## Quality",
        "## Latency and throughput",
        "## Cost vs volume",
        "## Flip points",
        "## Excluded options",
        "## Assumptions and sources",
        "## Reproducibility manifest",
    ):
        assert f"\n{heading}" in md, heading
    assert "| GPT-4o | Llama 3.1 70B Instruct | no |" in md
    assert f"| MMLU | 88.7 | {SOURCE_URL} | 2024-06 |" in md
    assert "- **falcon-180b**: needs 8 GPUs; the constraint is 2" in md
    # No raw HTML from the data, except verbatim inside the manifest's code fence.
    body, manifest = md.split("## Reproducibility manifest\n")
    assert EVIL not in body and "<img" not in body
    assert manifest.startswith("\n```json\n{") and manifest.endswith("}\n```\n")
    assert json.loads(manifest.strip().strip("`").removeprefix("json"))["note"] == EVIL


def test_nearly_empty_report(tmp_path: Path) -> None:
    for report in (
        {},
        {"title": None, "models": None, "tco": None, "advice": None, "manifest": None},
        {
            "models": [{"name": "x", "quality": {"mean": float("nan")}}, None, "junk"],
            "recommendation": {"model": "y"},
            "tco": {"volumes": [0, -1, None], "curves": {"x": [None, 0, "a"]}, "break_even": [{}]},
            "dimensions": {"scores": {"x": {"cost": {"score": "high", "evidence": "cheap"}}}},
            "advice": {"ranking": [{}], "excluded": [{"reasons": None}], "flip_points": [None]},
            "volume": {"tokens_per_month": float("inf")},
        },
    ):
        page = render_report_html(report)
        assert page.startswith("<!DOCTYPE html>") and "</html>" in page
        assert "NaN" not in page and "Infinity" not in page and "None" not in page
        md = render_report_markdown(report)
        assert md.startswith("# ") and "## Recommendation" in md and "None" not in md
    page = render_report_html({})
    assert "No recommendation" in page and "No cost curves." in page
    assert "No dimension scores." in page and 'id="cost-chart"' not in page
    paths = write_report({}, tmp_path)
    assert json.loads(paths["json"].read_text("utf-8")) == {}


# --------------------------------------------------------------------------- browser


def test_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    chromium = _chromium()
    target = tmp_path / "report.html"
    target.write_text(page, encoding="utf-8")
    uri = target.as_uri()
    runs = {
        "full": (1280, 1400, [f"--screenshot={tmp_path / 'full.png'}", uri]),
        "cost": (900, 520, [f"--screenshot={tmp_path / 'cost.png'}", uri + "#chart=cost"]),
        "quality": (900, 300, [f"--screenshot={tmp_path / 'quality.png'}", uri + "#chart=quality"]),
        "dom": (900, 520, ["--dump-dom", uri + "#chart=cost"]),
    }
    procs = {
        k: subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--window-size={w},{h}",
                f"--user-data-dir={tmp_path / ('profile-' + k)}",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for k, (w, h, args) in runs.items()
    }
    out: dict[str, tuple[str, str]] = {}
    for k, proc in procs.items():
        try:
            out[k] = proc.communicate(timeout=90)
        finally:
            proc.kill()
        assert proc.returncode == 0, out.get(k, ("", ""))[1][-3000:]
    for _, stderr in out.values():
        console = [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
        assert console == [], console

    # #chart=cost moved the cost chart into the solo container and hid the rest.
    dom = out["dom"][0]
    assert re.search(
        r'<body class="solo">\s*<div id="solo"><figure class="fig" id="cost-chart">', dom
    )

    # The full page is a real render: the recommendation card on the first screen.
    width, bpp, rows = _pixels((tmp_path / "full.png").read_bytes())
    assert (width, len(rows)) == (1280, 1400)
    assert len(set(_region(rows, bpp, 0, 0, width, 500))) > 100
    assert _near(_region(rows, bpp, 0, 0, width, 500), "#2f5fd0", 20) > 500  # accent colours

    # The cost chart alone, at the top left: 860×384 px from (8, 8).
    width, bpp, rows = _pixels((tmp_path / "cost.png").read_bytes())
    assert (width, len(rows)) == (900, 520)
    chart = _region(rows, bpp, 8, 8, 868, 392)
    assert len(set(chart)) > 150, len(set(chart))
    plot = _region(rows, bpp, 88, 42, 568, 342)  # inside the axes: the four lines
    for colour in ("#0072B2", "#D55E00", "#009E73", "#CC79A7"):
        assert _near(plot, colour) > 150, colour
    assert len(set(_region(rows, bpp, 0, 410, width, 520))) == 1  # nothing else on the page

    # The quality chart alone: bars in the open and closed colours, 710×166 px from (8, 8).
    width, bpp, rows = _pixels((tmp_path / "quality.png").read_bytes())
    chart = _region(rows, bpp, 8, 8, 718, 174)
    assert len(set(chart)) > 80, len(set(chart))
    bars = _region(rows, bpp, 228, 52, 648, 166)
    assert _near(bars, "#6cbf8c", 12) > 1500 and _near(bars, "#7f9de0", 12) > 1500
    assert len(set(_region(rows, bpp, 0, 200, width, 300))) == 1
