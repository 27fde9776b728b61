"""The self-contained results page: content, escaping, no external resources, and a real
render in headless Chromium (items rendered by its JS, no console errors, non-blank)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from crossroads.evals.html import render_results_html

from .browser import CHROMIUM_FLAGS, _chromium, _png_pixels

MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b-instruct"]
TAGS = ["math", "extraction", "summarise", "code"]
EVIL = "<script>alert(1)</script>"
EVIL_OUTPUT = f"Sure! {EVIL} and then </script><script>alert(2)</script><!-- https://example.com"
EVIL_TAG = '<img src=x onerror="alert(3)">'
N_ITEMS = 120
VERDICT = "claude-3-5-haiku better than llama-3.1-8b-instruct by 0.21 (95% CI 0.12 to 0.30)"


def _q(est: float | None) -> dict[str, float | None]:
    return {"estimate": est, "low": None if est is None else est * 0.9, "high": est and est * 1.1}


def _result(i: int, m: int) -> dict[str, Any]:
    model = MODELS[m]
    passed: bool | None = (i + 2 * m) % 5 != 0
    output, error, format_error = f"answer {i} from {model}", None, False
    if i == 3 and m == 0:
        output = EVIL_OUTPUT
    if i % 17 == 5 and m == 2:
        output, error, passed = "", "TimeoutError: backend did not answer in 60 s", None
    if i % 13 == 7 and m == 1:
        format_error, passed = True, False
    if i % 29 == 11:
        passed = None  # scored only (e.g. BLEU without a threshold)
    score = 1.0 if passed else 0.35 if passed is None and error is None else 0.0
    return {
        "item_id": f"item-{i:03d}",
        "model": model,
        "repeat": 0,
        "output": output,
        "score": score,
        "passed": passed,
        "format_error": format_error,
        "scores": {
            "exact": {"value": score, "passed": passed, "detail": None},
            "json_valid": {
                "value": 0.0 if format_error else 1.0,
                "passed": not format_error,
                "detail": "Expecting value: line 1 column 1" if format_error else None,
            },
        },
        "latency_s": None if error else 0.2 + 0.1 * m + (i % 7) * 0.05,
        "ttft_s": None if error else 0.05 + 0.01 * m,
        "tokens_per_s": None if error else 40.0 + 10 * m,
        "prompt_tokens": 20 + i % 9,
        "completion_tokens": 0 if error else 5 + i % 11,
        "cost_usd": None if m == 2 else 0.00012 * (m + 1),
        "cached": i % 10 == 0,
        "error": error,
    }


def _model_summary(m: int) -> dict[str, Any]:
    mean = [0.78, 0.84, 0.61][m]
    return {
        "n_items": N_ITEMS,
        "n_results": N_ITEMS,
        "mean": mean,
        "ci_low": mean - 0.07,
        "ci_high": mean + 0.06,
        "pass_rate": mean - 0.02,
        "errors": [0, 0, 7][m],
        "format_errors": [0, 9, 0][m],
        "latency_p50": _q(0.31 + m / 10),
        "latency_p95": _q(0.52 + m / 10),
        "latency_p99": _q(None),
        "ttft_p50": _q(0.06),
        "tokens_per_s_median": 40.0 + 10 * m,
        "cost_usd_total": None if m == 2 else 0.0144 * (m + 1),
        "cost_usd_per_item": None if m == 2 else 0.00012 * (m + 1),
        "by_tag": {
            t: {"n": 30, "mean": mean - 0.05 * k}
            | {
                "ci_low": None if k == 3 else mean - 0.05 * k - 0.08,
                "ci_high": mean - 0.05 * k + 0.07,
            }
            for k, t in enumerate([*TAGS, EVIL_TAG])
        },
    }


def _results() -> dict[str, Any]:
    items = []
    for i in range(N_ITEMS):
        tags = [TAGS[i % len(TAGS)]] + (["hard"] if i % 6 == 0 else [])
        if i % 40 == 1:
            tags.append(EVIL_TAG)
        expected: Any = {"answer": i, "units": None} if i % 2 else f"answer {i}"
        prompt = f"Question {i}: what is {i} + {i}?" + (f" {EVIL}" if i == 4 else "")
        items.append({"id": f"item-{i:03d}", "tags": tags, "prompt": prompt, "expected": expected})
    return {
        "run": {
            "id": "run-20250301-abc123",
            "suite": "support-triage",
            "suite_hash": "9f2c1e0d4b5a69788776",
            "created": "2025-03-01T12:34:56+00:00",
            "models": MODELS,
            "repeat": 1,
            "status": "partial",
            "options": {"concurrency": 8, "temperature": 0.0},
        },
        "manifest": {
            "crossroads": "0.1.0",
            "python": "3.11.9",
            "packages": {"httpx": "0.28.1", "numpy": "2.1.0"},
            "hardware": {"cpu": "x86_64", "gpus": []},
            "seed": 1234,
            "models": {
                "llama-3.1-8b-instruct": {"revision": "0e9e39f249a16976918f6564b8830bc894c89659"}
            },
            "weird": float("nan"),
        },
        "items": items,
        "results": [_result(i, m) for i in range(N_ITEMS) for m in range(len(MODELS))],
        "summary": {
            "models": {name: _model_summary(m) for m, name in enumerate(MODELS)},
            "pairs": [
                {"a": MODELS[0], "b": MODELS[1], "n": N_ITEMS, "mean_diff": -0.06, "ci_low": -0.13}
                | {"ci_high": 0.01, "mcnemar_b": 8, "mcnemar_c": 15, "mcnemar_p": 0.21}
                | {"significant": False, "items_needed": 410}
                | {"verdict": "no significant difference (95% CI -0.13 to 0.01)"},
                {"a": MODELS[1], "b": MODELS[2], "n": N_ITEMS, "mean_diff": 0.21, "ci_low": 0.12}
                | {"ci_high": 0.30, "mcnemar_b": 31, "mcnemar_c": 6, "mcnemar_p": 0.00004}
                | {"significant": True, "items_needed": None, "verdict": VERDICT},
                {"a": MODELS[0], "b": MODELS[2], "n": None, "mean_diff": None, "ci_low": None}
                | {"ci_high": None, "mcnemar_b": None, "mcnemar_c": None, "mcnemar_p": None}
                | {"significant": False, "items_needed": None, "verdict": "no items answered"},
            ],
            "confidence": 0.95,
        },
    }


class _Scan(HTMLParser):
    """Scripts (attrs + text) and every URL-carrying attribute of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.urls: list[str] = []
        self.handlers: list[str] = []
        self._in_script: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "action", "formaction", "poster", "data"}:
                self.urls.append(value or "")
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
        if tag == "script":
            self._in_script, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script is not None:
            self.scripts.append((self._in_script, "".join(self._text)))
            self._in_script = None


def _split_data_block(page: str) -> tuple[str, str]:
    """(the JSON data block's text, the page without it)."""
    m = re.search(
        r'<script type="application/json" id="crossroads-data">(.*?)</script>', page, re.S
    )
    assert m, "no JSON data block"
    return m.group(1), page[: m.start(1)] + page[m.end(1) :]


@pytest.fixture(scope="module")
def page() -> str:
    return render_results_html(_results())


def test_content_and_summary(page: str) -> None:
    for name in MODELS:
        assert html.escape(name) in page
    assert VERDICT in page
    assert "no significant difference (95% CI -0.13 to 0.01)" in page
    assert 'class="sig"' in page and "significant</span>" in page
    assert "0.84 [0.77–0.90]" in page  # mean [CI]
    assert "+0.210 [+0.120, +0.300]" in page and "−0.060 [−0.130, +0.010]" in page  # A − B
    assert "partial</span>" in page  # status badge
    assert "support-triage" in page and "run-20250301-abc123" in page
    assert "<svg" in page and "<rect" in page  # bar chart
    assert "0e9e39f249a16976918f6564b8830bc894c89659" in page  # manifest
    assert "<details" in page
    assert "NaN" not in page  # non-finite numbers become null / "—"


def test_no_external_resources(page: str) -> None:
    data, rest = _split_data_block(page)
    assert "https://example.com" in json.loads(data)["items"][3]["r"][0][0]["o"]
    scan = _Scan()
    scan.feed(rest)
    assert all(not u or u.startswith("#") for u in scan.urls), scan.urls
    assert not re.search(r"https?://|@import|url\(|//cdn|<link|<iframe", rest, re.I)
    assert all(not attrs.get("src") for attrs, _ in scan.scripts)


def test_untrusted_text_is_escaped(page: str) -> None:
    assert EVIL not in page
    data, rest = _split_data_block(page)
    assert rest.lower().count("<script") == 2  # our two blocks, nothing injected
    assert "<img" not in rest and "alert(2)" not in rest
    assert "&lt;img src=x onerror=" in rest  # the tag, rendered as text in the by-tag table
    scan = _Scan()
    scan.feed(page)
    assert scan.handlers == []  # no on*= attribute anywhere
    # Exactly two scripts: the inert data block and our own code; the data block parses back.
    assert [a.get("type") for a, _ in scan.scripts] == ["application/json", None]
    assert scan.scripts[0][1] == data
    for needle in ("</", "<!--", "<script", "\u2028"):
        assert needle not in data.lower()
    decoded = json.loads(data)
    assert decoded["models"] == MODELS
    assert len(decoded["items"]) == N_ITEMS
    assert decoded["items"][3]["r"][0][0]["o"] == EVIL_OUTPUT
    assert EVIL in decoded["items"][4]["p"]


def test_defensive_on_sparse_input() -> None:
    page = render_results_html(
        {
            "run": {"models": ["m", None], "status": None},
            "items": [{"id": 1, "tags": None, "expected": [1, float("inf")]}, "junk"],
            "results": [{"item_id": 1, "model": "x", "score": "NaN"}, {"item_id": 2}, None],
            "summary": {"models": {"m": {"mean": float("nan"), "latency_p50": 3}}, "pairs": [{}]},
        }
    )
    assert "—" in page and "NaN" not in page and "Infinity" not in page
    data = json.loads(_split_data_block(page)[0])
    assert data["models"] == ["m", "x"]
    assert [it["id"] for it in data["items"]] == ["1"]  # junk item dropped, model-less result too
    assert data["items"][0]["r"][1] == [{}]  # the score "NaN" (a string) is dropped, not shown
    assert render_results_html({}).startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- browser


def _items_container(dom: str) -> tuple[str, str]:
    """(data-state, inner HTML) of the client-rendered items list in a dumped DOM."""
    m = re.search(
        r'<div id="items-list" data-state="(\w+)"[^>]*>(.*?)<div class="pager"', dom, re.S
    )
    assert m, dom[-2000:]
    return m.group(1), m.group(2)


def _expected_filtered(results: dict[str, Any], tag: str, visible: list[str]) -> list[str]:
    """Items with ``tag`` whose visible models disagree (errors/format errors count as fails)."""
    verdict: dict[tuple[str, str], bool | None] = {}
    for r in results["results"]:
        bad = r["error"] is not None or r["format_error"]
        verdict[r["item_id"], r["model"]] = False if bad else r["passed"]
    out = []
    for item in results["items"]:
        if tag in item["tags"]:
            seen = {verdict[item["id"], m] for m in visible} - {None}
            if seen == {True, False}:
                out.append(item["id"])
    return out


def test_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    chromium = _chromium()
    target = tmp_path / "results.html"
    target.write_text(page, encoding="utf-8")
    png = tmp_path / "shot.png"
    uri = target.as_uri()
    fragment = "#" + urlencode({"tag": "math", "disagree": "1", "hide": MODELS[2], "size": "25"})
    common = [chromium, *CHROMIUM_FLAGS, "--window-size=1280,2000"]
    runs = {
        "dom": ["--dump-dom", uri],
        "filtered": ["--dump-dom", uri + fragment],
        "png": [f"--screenshot={png}", uri],
    }
    procs = {
        k: subprocess.Popen(
            [*common, f"--user-data-dir={tmp_path / ('profile-' + k)}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for k, args in runs.items()
    }
    out: dict[str, tuple[str, str]] = {}
    for k, proc in procs.items():
        try:
            out[k] = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 0, out.get(k, ("", ""))[1][-3000:]
    for _, stderr in out.values():
        console = [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
        assert console == [], console

    # The JS rendered the first page of items into the container.
    dom = out["dom"][0]
    state, items_html = _items_container(dom)
    assert state == "ready", items_html[:500]
    assert items_html.count('<article class="item"') == 50
    assert 'data-item-id="item-000"' in items_html and 'data-item-id="item-049"' in items_html
    assert 'data-item-id="item-050"' not in items_html
    assert "1–50 of 120" in dom
    assert items_html.count('class="cell"') == 50 * len(MODELS)
    for cls in ("s-pass", "s-fail", "s-format", "s-error", "s-scored", "cached"):
        assert cls in items_html, cls
    # The malicious output is text in the DOM, not markup.
    assert html.escape(EVIL, quote=False) in items_html
    assert EVIL not in dom and "<img src=x" not in dom

    # The screenshot is a real, non-blank render.
    data = png.read_bytes()
    assert len(data) > 20_000, len(data)
    width, height, raw = _png_pixels(data)
    assert (width, height) == (1280, 2000)
    assert len(set(raw)) > 64
    rows = {raw[i : i + 200] for i in range(0, len(raw), len(raw) // 400)}
    assert len(rows) > 40  # many different rows, not a uniform fill

    # Filters restored from the URL fragment: tag, only disagreements, a hidden model, page size.
    want = _expected_filtered(_results(), "math", MODELS[:2])
    assert 0 < len(want) <= 25, want
    state, filtered_html = _items_container(out["filtered"][0])
    assert state == "ready"
    assert re.findall(r'data-item-id="([^"]+)"', filtered_html) == want
    assert f"1–{len(want)} of {len(want)} (filtered from {N_ITEMS})" in out["filtered"][0]
    assert filtered_html.count('class="cell"') == 2 * len(want)
    assert f'data-model="{MODELS[2]}"' not in filtered_html
