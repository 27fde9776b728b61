"""One evaluation run as a single self-contained HTML page (``results.html``).

``render_results_html(results)`` takes the dict written to ``results.json`` and returns a
page with no external resources: inline CSS, inline SVG and vanilla JS, usable offline from
``file://`` and printable.

* Header, per-model summary (+ SVG bar chart with CI whiskers), pairwise comparisons, per-tag
  table and manifest: server-side Jinja2, autoescape on (outputs, prompts, tags and even model
  names are untrusted).
* Items (side-by-side outputs, filters, pagination): client-side from one
  ``<script type="application/json">`` block, so a 100,000-item run stays usable. ``<``, ``>``,
  ``&``, U+2028/9 are ``\\uXXXX``-escaped, so the block can hold neither ``</script`` nor
  ``<!--``; the JS builds the DOM with ``textContent`` only, never ``innerHTML``.

Any numeric field may be null, missing or non-finite: it prints as "—".
"""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

from .._pages import DASH as _DASH
from .._pages import as_dict as _dict
from .._pages import as_str as _str
from .._pages import clean_json as _clean
from .._pages import date_label as _date
from .._pages import fixed as _f
from .._pages import num as _num
from .._pages import page_template
from .._pages import strict_dumps as _dumps

__all__ = ["render_results_html"]

_TEMPLATE = "results.html.j2"

# Bar chart geometry (px).
_CHART_LABEL_W = 190
_CHART_PLOT_W = 420
_CHART_ROW_H = 26
_CHART_TOP = 22


# --------------------------------------------------------------------------- values


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _script_json(value: Any) -> Markup:
    """JSON that is inert inside ``<script>``: no ``<``, ``>``, ``&`` or line separators."""
    text = _dumps(value, separators=(",", ":"))
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return Markup(text)


# --------------------------------------------------------------------------- formatting


def _ci(mean: Any, low: Any, high: Any) -> str:
    """``0.72 [0.65–0.79]``; the bracket is dropped when either bound is missing."""
    if _num(mean) is None or _num(low) is None or _num(high) is None:
        return _f(mean)
    return f"{_f(mean)} [{_f(low)}–{_f(high)}]"


def _diff(mean: Any, low: Any, high: Any) -> str:
    """A signed difference with its CI: ``+0.210 [+0.120, +0.300]``."""

    def signed(v: Any) -> str:
        f = _num(v)
        return _DASH if f is None else f"{f:+.3f}".replace("-", "−")

    if _num(low) is None or _num(high) is None:
        return signed(mean)
    return f"{signed(mean)} [{signed(low)}, {signed(high)}]"


def _pct(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else f"{v * 100:.1f}%"


def _secs(value: Any) -> str:
    v = _num(value)
    if v is None:
        return _DASH
    return f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:.2f} s"


def _cost(value: Any) -> str:
    v = _num(value)
    if v is None:
        return _DASH
    if v == 0:
        return "$0"
    return f"${v:,.2f}" if abs(v) >= 1 else f"${v:.4f}" if abs(v) >= 0.0001 else f"${v:.2e}"


def _int(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else f"{int(v):,}"


def _quantile(value: Any) -> tuple[str, str]:
    """A ``{"estimate","low","high"}`` latency quantile: (text, tooltip with its CI)."""
    q = _dict(value)
    text = _secs(q.get("estimate"))
    if _num(q.get("low")) is None or _num(q.get("high")) is None:
        return text, ""
    return text, f"CI {_secs(q.get('low'))} – {_secs(q.get('high'))}"


def _show(value: Any) -> str:
    """Any JSON value for display: strings as they are, the rest pretty-printed."""
    return value if isinstance(value, str) else _dumps(value, indent=2)


def _tint(value: Any) -> str:
    """Background colour for a 0..1 score: red → amber → green, empty when unknown."""
    v = _num(value)
    if v is None:
        return ""
    hue = round(max(0.0, min(1.0, v)) * 120)
    return f"background-color: hsl({hue}, 70%, 90%)"


# --------------------------------------------------------------------------- view model


def _model_order(results: dict[str, Any]) -> list[str]:
    """Models as the run lists them, then any other model seen in summary or results."""
    order: list[str] = []
    candidates = [
        *_list(_dict(results.get("run")).get("models")),
        *_dict(_dict(results.get("summary")).get("models")).keys(),
        *(_dict(r).get("model") for r in _list(results.get("results"))),
    ]
    seen: set[str] = set()
    for m in candidates:
        if m is None:
            continue
        name = _str(m)
        if name not in seen:
            seen.add(name)
            order.append(name)
    return order


def _summary_rows(models: list[str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    per_model = _dict(summary.get("models"))
    rows = []
    for name in models:
        s = _dict(per_model.get(name))
        p50, p50_ci = _quantile(s.get("latency_p50"))
        p95, p95_ci = _quantile(s.get("latency_p95"))
        rows.append(
            {
                "model": name,
                "n_items": _int(s.get("n_items")),
                "n_results": _int(s.get("n_results")),
                "mean": _ci(s.get("mean"), s.get("ci_low"), s.get("ci_high")),
                "tint": _tint(s.get("mean")),
                "pass_rate": _pct(s.get("pass_rate")),
                "p50": p50,
                "p50_ci": p50_ci,
                "p95": p95,
                "p95_ci": p95_ci,
                "tps": _f(s.get("tokens_per_s_median"), 1),
                "cost": _cost(s.get("cost_usd_total")),
                "cost_item": _cost(s.get("cost_usd_per_item")),
                "errors": _int(s.get("errors")),
                "has_errors": (_num(s.get("errors")) or 0) > 0,
                "format_errors": _int(s.get("format_errors")),
                "has_format_errors": (_num(s.get("format_errors")) or 0) > 0,
            }
        )
    return rows


def _chart(models: list[str], summary: dict[str, Any]) -> dict[str, Any]:
    """Geometry for a horizontal bar chart of mean score (0..1) with CI whiskers."""
    per_model = _dict(summary.get("models"))

    def x(v: float) -> float:
        return round(_CHART_LABEL_W + max(0.0, min(1.0, v)) * _CHART_PLOT_W, 1)

    bars = []
    for i, name in enumerate(models):
        s = _dict(per_model.get(name))
        mean, lo, hi = _num(s.get("mean")), _num(s.get("ci_low")), _num(s.get("ci_high"))
        y = _CHART_TOP + i * _CHART_ROW_H
        bar: dict[str, Any] = {
            "label": name if len(name) <= 28 else name[:27] + "…",
            "title": f"{name}: {_ci(mean, lo, hi)}",
            "mid": y + _CHART_ROW_H / 2,
            "bar_y": y + 5,
            "bar_h": _CHART_ROW_H - 10,
            "w": None if mean is None else round(x(mean) - _CHART_LABEL_W, 1),
            "value": _f(mean),
            "value_x": x(max(mean or 0.0, hi or 0.0)) + 6,
            "whisker": None if lo is None or hi is None else (x(lo), x(hi)),
            "tick_top": y + _CHART_ROW_H / 2 - 6,
            "tick_bot": y + _CHART_ROW_H / 2 + 6,
        }
        bars.append(bar)
    plot_h = len(models) * _CHART_ROW_H
    ticks = [{"x": x(t / 4), "label": f"{t / 4:g}"} for t in range(5)]
    return {
        "bars": bars,
        "ticks": ticks,
        "x0": _CHART_LABEL_W,
        "top": _CHART_TOP,
        "bottom": _CHART_TOP + plot_h,
        "width": _CHART_LABEL_W + _CHART_PLOT_W + 60,
        "height": _CHART_TOP + plot_h + 8,
    }


def _pair_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for pair in _list(summary.get("pairs")):
        p = _dict(pair)
        pval = _num(p.get("mcnemar_p"))
        rows.append(
            {
                "a": _str(p.get("a")),
                "b": _str(p.get("b")),
                "n": _int(p.get("n")),
                "diff": _diff(p.get("mean_diff"), p.get("ci_low"), p.get("ci_high")),
                "b_c": f"{_int(p.get('mcnemar_b'))} / {_int(p.get('mcnemar_c'))}",
                "p": _DASH if pval is None else f"{pval:.3g}" if pval >= 0.001 else "<0.001",
                "significant": p.get("significant") is True,
                "verdict": _str(p.get("verdict"), _DASH),
                "items_needed": _int(p.get("items_needed")),
            }
        )
    return rows


def _tag_rows(models: list[str], summary: dict[str, Any]) -> list[dict[str, Any]]:
    per_model = _dict(summary.get("models"))
    tags = sorted({_str(t) for m in models for t in _dict(_dict(per_model.get(m)).get("by_tag"))})
    rows = []
    for tag in tags:
        cells = []
        for m in models:
            t = _dict(_dict(_dict(per_model.get(m)).get("by_tag")).get(tag))
            cells.append(
                {
                    "text": _ci(t.get("mean"), t.get("ci_low"), t.get("ci_high")),
                    "n": _int(t.get("n")),
                    "tint": _tint(t.get("mean")),
                }
            )
        rows.append({"tag": tag, "cells": cells})
    return rows


def _compact_result(r: dict[str, Any]) -> dict[str, Any]:
    """One result with short keys and defaults dropped: the page may embed 10⁵-10⁶ of them."""
    scorers = [
        [_str(name), _num(s.get("value")), _bool(s.get("passed")), _opt_str(s.get("detail"))]
        for name, s in ((n, _dict(v)) for n, v in _dict(r.get("scores")).items())
    ]
    out: dict[str, Any] = {
        "n": _num(r.get("repeat")),
        "o": _opt_str(r.get("output")),
        "s": _num(r.get("score")),
        "p": _bool(r.get("passed")),
        "sc": scorers or None,
        "l": _num(r.get("latency_s")),
        "t": _num(r.get("ttft_s")),
        "v": _num(r.get("tokens_per_s")),
        "pt": _num(r.get("prompt_tokens")),
        "ct": _num(r.get("completion_tokens")),
        "c": _num(r.get("cost_usd")),
        "f": r.get("format_error") is True or None,
        "k": r.get("cached") is True or None,
        "e": _opt_str(r.get("error")),
    }
    return {k: v for k, v in out.items() if v is not None}


def _items_data(results: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """The client-side payload: items in suite order, each with results per model column."""
    model_index = {m: i for i, m in enumerate(models)}
    items: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}

    def add_item(item_id: str, item: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": item_id,
            "t": [_str(t) for t in _list(item.get("tags"))],
            "p": _str(item.get("prompt")),
            "x": None if "expected" not in item else _show(item["expected"]),
            "r": [[] for _ in models],
        }
        items.append(entry)
        by_id[item_id] = entry
        return entry

    for item in _list(results.get("items")):
        if isinstance(item, dict) and _str(item.get("id")) not in by_id:
            add_item(_str(item.get("id")), item)
    for raw in _list(results.get("results")):
        r = _dict(raw)
        column = model_index.get(_str(r.get("model"), "\0"))
        if column is None:  # a result without a model: nowhere to show it
            continue
        item_id = _str(r.get("item_id"))
        entry = by_id[item_id] if item_id in by_id else add_item(item_id, {})
        entry["r"][column].append(_compact_result(r))
    for entry in items:
        for cell in entry["r"]:
            cell.sort(key=lambda c: _num(c.get("n")) or 0)
    return {"models": models, "items": items}


# --------------------------------------------------------------------------- render


def _template() -> jinja2.Template:
    return page_template("crossroads.evals", _TEMPLATE)


def render_results_html(results: dict[str, Any]) -> str:
    """Render one evaluation run (the ``results.json`` dict) as a self-contained HTML page."""
    results = _dict(results)
    run = _dict(results.get("run"))
    summary = _dict(results.get("summary"))
    models = _model_order(results)
    confidence = _num(summary.get("confidence"))
    status = _str(run.get("status"), "unknown")
    manifest = _clean(results.get("manifest"))
    options = _clean(run.get("options"))
    context = {
        "suite": _str(run.get("suite"), "evaluation"),
        "run_id": _str(run.get("id"), _DASH),
        "suite_hash": _str(run.get("suite_hash")),
        "created": _date(run.get("created")),
        "created_raw": _str(run.get("created")),
        "models": models,
        "repeat": _int(run.get("repeat")),
        "status": status,
        "partial": status != "complete",
        "confidence": _DASH if confidence is None else f"{confidence * 100:g}%",
        "n_items": len(_list(results.get("items"))),
        "n_results": len(_list(results.get("results"))),
        "summary_rows": _summary_rows(models, summary),
        "chart": _chart(models, summary),
        "pairs": _pair_rows(summary),
        "tag_models": models,
        "tag_rows": _tag_rows(models, summary),
        "manifest_json": _dumps(manifest, indent=2, sort_keys=True),
        "options_json": _dumps(options, indent=2, sort_keys=True),
        "has_options": bool(options),
        "data_json": _script_json(_items_data(results, models)),
    }
    return _template().render(**context)
