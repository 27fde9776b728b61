"""The decision report as one self-contained HTML page, a Markdown twin and the raw JSON.

``render_report_html(report)`` returns a page with no external resources: inline CSS, inline
SVG charts (quality bars with CI whiskers; cost vs volume on log-log axes with break-even
points) and a few lines of vanilla JS (open ``<details>`` before printing; ``#chart=cost`` /
``#chart=quality`` shows that chart alone, at the top left, for screenshots). Jinja2 renders it
with autoescape on: every string in the report dict is untrusted (model names, notes,
evidence, sources, the manifest).

``render_report_markdown(report)`` has the same sections as tables and lists (no charts).
``write_report(report, out)`` writes ``report.html``, ``report.md`` and ``report.json``.

Any field may be missing, null, the wrong type or non-finite: it prints as "—" or the section
says there is nothing to show.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import jinja2

from .._pages import DASH as _DASH
from .._pages import as_dict as _dict
from .._pages import as_str as _str
from .._pages import clean_json as _clean
from .._pages import date_label as _date
from .._pages import fixed as _f
from .._pages import num as _num
from .._pages import page_template
from .._pages import strict_dumps as _dumps

__all__ = ["render_report_html", "render_report_markdown", "write_report"]

_TEMPLATE = "report.html.j2"
_NOT_MEASURED = "not measured here"

# The ten "key differences" between open and closed models, in the seed article's order
# (keys as in crossroads.decide.dimensions.DIMENSIONS); display names for dimensions the
# report's ``dimensions.names`` does not name.
DEFAULT_DIMENSIONS: dict[str, str] = {
    "cost": "Cost",
    "customization": "Customization",
    "transparency": "Transparency",
    "performance": "Performance",
    "ease_of_use": "Ease of use",
    "scalability": "Scalability",
    "support": "Support",
    "ecosystem": "Innovation and ecosystem",
    "control": "Control",
    "ethics_bias": "Ethics and bias",
}

# Okabe-Ito (colour-blind safe) without the yellow, which is unreadable on white.
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_OPEN_FILL, _CLOSED_FILL = "#6cbf8c", "#7f9de0"

# Quality chart geometry (px).
_Q_LABEL_W, _Q_PLOT_W, _Q_ROW_H, _Q_TOP = 220, 420, 28, 44

# Cost chart geometry (px): plot box, then the legend to its right.
_C_LEFT, _C_RIGHT, _C_TOP, _C_BOTTOM = 80, 560, 34, 334
_C_LEGEND_X, _C_WIDTH, _C_HEIGHT = 584, 860, 384


# --------------------------------------------------------------------------- values


def _pos(value: Any) -> float | None:
    """A finite, strictly positive number (plottable on a log axis), else None."""
    v = _num(value)
    return v if v is not None and v > 0 else None


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _strs(value: Any) -> list[str]:
    """A list of non-empty strings (a lone string counts as a one-item list)."""
    if isinstance(value, str):
        return [value] if value else []
    return [_str(v) for v in _list(value) if v is not None and _str(v)]


# --------------------------------------------------------------------------- formatting


def _g(value: Any) -> str:
    """A short general number: 0.25, 12, 1.5e-05."""
    v = _num(value)
    return _DASH if v is None else f"{v:.3g}"


def _compact(value: float) -> str:
    """1500 → 1.5k, 2e6 → 2M, 1.25e9 → 1.25B; three significant digits at most."""
    a = abs(value)
    if a < 1000:
        text = f"{value:.3g}"
        return text if "e" not in text else f"{value:.1e}"
    for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        text = f"{value / div:.3g}"
        if "e" not in text and abs(float(text)) < 1000:
            return text + suffix
    return f"{value / 1e12:,.0f}T"


def _tokens(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else _compact(v)


def _usd(value: Any) -> str:
    v = _num(value)
    if v is None:
        return _DASH
    if v == 0:
        return "$0"
    sign, a = ("−" if v < 0 else ""), abs(v)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    return f"{sign}${a:.2g}" if a >= 1e-4 else f"{sign}${a:.1e}"


def _usd_tick(value: float) -> str:
    return "$" + (_compact(value) if value >= 1000 else f"{value:g}")


def _pct(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else f"{v * 100:.0f}%" if v * 100 == int(v * 100) else f"{v:.1%}"


def _secs(value: Any) -> str:
    v = _num(value)
    if v is None:
        return _DASH
    return f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:.2f} s"


def _int(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else f"{int(v):,}"


def _params(value: Any) -> str:
    v = _num(value)
    return _DASH if v is None else f"{v:g}B"


def _ci(mean: Any, low: Any, high: Any) -> str:
    """``0.72 [0.65–0.79]``; the bracket is dropped when either bound is missing."""
    if _num(mean) is None or _num(low) is None or _num(high) is None:
        return _f(mean)
    return f"{_f(mean)} [{_f(low)}–{_f(high)}]"


def _value(value: Any) -> str:
    """A flip point's current / flip value: numbers compact (5e7 → 50M), others as text."""
    v = _num(value)
    if v is not None:
        return _compact(v) if abs(v) >= 10_000 else f"{v:.4g}"
    if value is None:
        return _DASH
    return value if isinstance(value, str) else _dumps(value)


def _tint(score: Any, scale: float = 10.0) -> str:
    """Background colour for a score on 0..scale: red → amber → green, empty when unknown."""
    v = _num(score)
    if v is None:
        return ""
    hue = round(max(0.0, min(1.0, v / scale)) * 120)
    return f"background-color: hsl({hue}, 70%, 88%)"


def _truncate(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------- models


def _models(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One view per model: recommended first, then ranking order, then everything else seen."""
    entries: dict[str, dict[str, Any]] = {}
    for raw in _list(report.get("models")):
        m = _dict(raw)
        name = _str(m.get("name")) or _str(m.get("catalog_id")) or _str(m.get("display"))
        if name and name not in entries:
            entries[name] = m
    advice = _dict(report.get("advice"))
    ranking = [_str(_dict(r).get("model")) for r in _list(advice.get("ranking"))]
    excluded = {_str(_dict(r).get("model")) for r in _list(advice.get("excluded"))}
    recommended = _str(_dict(report.get("recommendation")).get("model"))
    tco = _dict(report.get("tco"))
    candidates = [
        recommended,
        *ranking,
        *entries,
        *_dict(_dict(report.get("dimensions")).get("scores")),
        *_dict(tco.get("curves")),
    ]
    order: list[str] = []
    for name in candidates:
        name = _str(name)
        if name and name not in order:
            order.append(name)
    # Excluded options go last: they are listed, but they are not in the running.
    order.sort(key=lambda n: n in excluded)
    views = []
    for i, name in enumerate(order):
        m = entries.get(name, {})
        kind = _str(m.get("kind")).lower()
        measured = m.get("measured")
        views.append(
            {
                "name": name,
                "label": _str(m.get("display")) or name,
                "catalog_id": _str(m.get("catalog_id")),
                "kind": kind if kind in {"open", "closed"} else "",
                "measured": measured is True,
                "unmeasured": measured is False,
                "note": _str(m.get("note")),
                "licence": _str(m.get("licence"), _DASH) or _DASH,
                "recommended": name == recommended,
                "excluded": name in excluded,
                "color": _PALETTE[i % len(_PALETTE)],
                "raw": m,
            }
        )
    return views


def _model_label(models: list[dict[str, Any]], name: str) -> str:
    for m in models:
        if m["name"] == name:
            return str(m["label"])
    return name


# --------------------------------------------------------------------------- sections


def _header(report: dict[str, Any]) -> dict[str, Any]:
    profile = _dict(report.get("profile"))
    volume = _dict(report.get("volume"))
    tokens = _num(volume.get("tokens_per_month"))
    share = _num(volume.get("input_share"))
    vol_text = _DASH if tokens is None else f"{_compact(tokens)} tokens/month"
    if tokens is not None and share is not None:
        vol_text += f" ({_pct(share)} input)"
    return {
        "title": _str(report.get("title")) or "Open or closed? Decision report",
        "generated": _date(report.get("generated")),
        "generated_raw": _str(report.get("generated")),
        "profile_name": _str(profile.get("name")),
        "profile_description": _str(profile.get("description")),
        "volume": vol_text,
        "volume_tokens": tokens,
    }


def _ranking(report: dict[str, Any], models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    raw = [_dict(r) for r in _list(_dict(report.get("advice")).get("ranking"))]
    scores = [s for s in (_num(r.get("score")) for r in raw) if s is not None]
    top = max([*scores, 0.0])
    for i, r in enumerate(raw):
        name = _str(r.get("model"))
        score = _num(r.get("score"))
        rows.append(
            {
                "rank": i + 1,
                "model": _model_label(models, name),
                "score": _f(score),
                "bar": 0 if score is None or top <= 0 else round(max(0.0, score) / top * 100, 1),
                "reasons": _strs(r.get("reasons")),
            }
        )
    return rows


def _recommendation(report: dict[str, Any], models: list[dict[str, Any]]) -> dict[str, Any]:
    rec = _dict(report.get("recommendation"))
    name = _str(rec.get("model"))
    m = next((m for m in models if m["name"] == name), None)
    raw = _dict(m["raw"]) if m else {}
    q = _dict(raw.get("quality"))
    return {
        "model": _model_label(models, name) if name else "",
        "kind": m["kind"] if m else "",
        "unmeasured": bool(m and m["unmeasured"]),
        "summary": _str(rec.get("summary")),
        "flip_summary": _str(rec.get("flip_summary")),
        "stats": [
            ("Quality (mean [CI])", _ci(q.get("mean"), q.get("ci_low"), q.get("ci_high"))),
            ("Latency p50", _secs(raw.get("latency_p50_s"))),
            ("Monthly cost at your volume", _usd(raw.get("monthly_cost_usd"))),
            ("Cost per 1M tokens", _usd(raw.get("cost_per_1m_usd"))),
            ("Licence", _str(raw.get("licence"), _DASH) or _DASH),
        ]
        if m
        else [],
    }


def _profile(report: dict[str, Any]) -> dict[str, Any]:
    profile = _dict(report.get("profile"))
    dim_names = _dict(_dict(report.get("dimensions")).get("names"))
    weights = [
        {
            "dim": _str(dim_names.get(k)) or DEFAULT_DIMENSIONS.get(k) or _str(k),
            "weight": _g(w),
        }
        for k, w in _dict(profile.get("weights")).items()
    ]
    constraints = [
        {"key": _str(k), "value": v if isinstance(v, str) else _dumps(_clean(v))}
        for k, v in _dict(profile.get("constraints")).items()
    ]
    return {"weights": weights, "constraints": constraints}


def _dimension_table(report: dict[str, Any], models: list[dict[str, Any]]) -> dict[str, Any]:
    dims = _dict(report.get("dimensions"))
    names = _dict(dims.get("names"))
    scores = _dict(dims.get("scores"))
    weights = _dict(_dict(report.get("profile")).get("weights"))
    keys: list[str] = []
    for k in [*names, *(d for per in scores.values() for d in _dict(per)), *weights]:
        if _str(k) not in keys:
            keys.append(_str(k))
    rows = []
    for key in keys:
        cells = []
        for m in models:
            s = _dict(_dict(scores.get(m["name"])).get(key))
            score = _num(s.get("score"))
            cells.append(
                {
                    "text": _f(score, 1),
                    "tint": _tint(score),
                    "evidence": _strs(s.get("evidence")),
                }
            )
        rows.append(
            {
                "key": key,
                "name": _str(names.get(key)) or DEFAULT_DIMENSIONS.get(key) or key,
                "weight": _g(weights.get(key)) if key in weights else _DASH,
                "cells": cells,
            }
        )
    ranking = {
        _str(_dict(r).get("model")): _num(_dict(r).get("score"))
        for r in _list(_dict(report.get("advice")).get("ranking"))
    }
    totals = [_f(ranking.get(m["name"])) for m in models] if ranking else []
    return {"rows": rows if any(r["cells"] for r in rows) else [], "totals": totals}


def _quality_chart(models: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars of mean quality with CI whiskers; unmeasured models get a labelled row."""
    rows = []
    values = []
    for m in models:
        q = _dict(m["raw"].get("quality"))
        mean, lo, hi = _num(q.get("mean")), _num(q.get("ci_low")), _num(q.get("ci_high"))
        values += [v for v in (mean, lo, hi) if v is not None]
        rows.append((m, mean, lo, hi))
    if not values:
        return {"bars": []}
    top = max(1.0, max(values))
    top = top if top <= 1.0 else float(math.ceil(top))
    low = min(0.0, min(values))

    def x(v: float) -> float:
        return round(_Q_LABEL_W + (max(low, min(top, v)) - low) / (top - low) * _Q_PLOT_W, 1)

    bars = []
    for i, (m, mean, lo, hi) in enumerate(rows):
        y = _Q_TOP + i * _Q_ROW_H
        mid = y + _Q_ROW_H / 2
        bars.append(
            {
                "label": _truncate(m["label"], 30),
                "title": f"{m['label']}: {_ci(mean, lo, hi)}",
                "mid": mid,
                "bar_y": y + 6,
                "bar_h": _Q_ROW_H - 12,
                "w": None if mean is None else max(0.0, round(x(mean) - x(0.0), 1)),
                "fill": _OPEN_FILL if m["kind"] == "open" else _CLOSED_FILL,
                "value": _f(mean),
                "value_x": x(max(mean or 0.0, hi or 0.0)) + 6,
                "whisker": None if lo is None or hi is None else (x(lo), x(hi)),
                "missing": _NOT_MEASURED if m["unmeasured"] or mean is None else "",
            }
        )
    steps = 4 if top == 1.0 else int(top - low)
    ticks = [
        {"x": x(low + (top - low) * t / steps), "label": f"{low + (top - low) * t / steps:g}"}
        for t in range(steps + 1)
    ]
    bottom = _Q_TOP + len(rows) * _Q_ROW_H
    return {
        "bars": bars,
        "ticks": ticks,
        "x0": x(0.0),
        "left": _Q_LABEL_W,
        "top": _Q_TOP,
        "bottom": bottom,
        "width": _Q_LABEL_W + _Q_PLOT_W + 70,
        "height": bottom + 10,
        "legend_x": _Q_LABEL_W,
        "open_fill": _OPEN_FILL,
        "closed_fill": _CLOSED_FILL,
    }


def _quality(report: dict[str, Any], models: list[dict[str, Any]]) -> dict[str, Any]:
    quality = _dict(report.get("quality"))
    rows = []
    benchmarks = []
    for m in models:
        q = _dict(m["raw"].get("quality"))
        rows.append(
            {
                "model": m["label"],
                "kind": m["kind"],
                "mean": _ci(q.get("mean"), q.get("ci_low"), q.get("ci_high")),
                "tint": _tint(q.get("mean"), 1.0),
                "pass_rate": _pct(q.get("pass_rate")),
                "measured": m["measured"],
                "unmeasured": m["unmeasured"] or not q,
                "note": m["note"],
            }
        )
        for b in _list(m["raw"].get("published_benchmarks")):
            b = _dict(b)
            benchmarks.append(
                {
                    "model": m["label"],
                    "measured": m["measured"],
                    "name": _str(b.get("name"), _DASH) or _DASH,
                    "score": _g(b.get("score"))
                    if _num(b.get("score")) is not None
                    else _str(b.get("score"), _DASH),
                    "source": _str(b.get("source"), _DASH) or _DASH,
                    "as_of": _str(b.get("as_of"), _DASH) or _DASH,
                }
            )
    pairs = [
        {
            "a": _model_label(models, _str(p.get("a"))),
            "b": _model_label(models, _str(p.get("b"))),
            "verdict": _str(p.get("verdict"), _DASH) or _DASH,
            "significant": p.get("significant") is True,
        }
        for p in (_dict(x) for x in _list(quality.get("pairs")))
    ]
    return {
        "suite": _str(quality.get("suite")),
        "run_id": _str(quality.get("run_id")),
        "rows": rows,
        "chart": _quality_chart(models),
        "benchmarks": benchmarks,
        "pairs": pairs,
        "any_measured": any(r["measured"] for r in rows),
    }


def _perf_rows(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for m in models:
        r = m["raw"]
        rows.append(
            {
                "model": m["label"],
                "kind": m["kind"],
                "unmeasured": m["unmeasured"],
                "p50": _secs(r.get("latency_p50_s")),
                "p95": _secs(r.get("latency_p95_s")),
                "tps": _f(r.get("tokens_per_s"), 1),
                "context": _int(r.get("context_window")),
                "params": _params(r.get("params_b")),
                "licence": m["licence"],
                "monthly": _usd(r.get("monthly_cost_usd")),
                "per_1m": _usd(r.get("cost_per_1m_usd")),
            }
        )
    return rows


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Decade ticks in [10^lo, 10^hi] (every other decade when there are many), with 2 and 5
    in between when the range is short."""
    first, last = math.floor(lo + 1e-9), math.ceil(hi - 1e-9)
    decades = last - first
    step = max(1, math.ceil(decades / 7))
    ticks = [10.0**d for d in range(first, last + 1, step)]
    if decades <= 2:
        ticks += [m * 10.0**d for d in range(first, last) for m in (2, 5)]
    return sorted(t for t in ticks if lo - 1e-9 <= math.log10(t) <= hi + 1e-9)


def _interp_loglog(xs: list[float], ys: list[float | None], v: float) -> float | None:
    """y at x=v on a piecewise-linear curve in log-log space (None outside / on gaps)."""
    for i in range(len(xs) - 1):
        x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
        if y0 is None or y1 is None or not min(x0, x1) <= v <= max(x0, x1):
            continue
        if x0 == x1:
            return y0
        t = (math.log10(v) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))
        return float(10 ** (math.log10(y0) + t * (math.log10(y1) - math.log10(y0))))
    return None


def _cost_chart(
    report: dict[str, Any], models: list[dict[str, Any]], volume_now: float | None
) -> dict[str, Any]:
    """A log-log line chart of monthly cost against monthly tokens, one line per model."""
    tco = _dict(report.get("tco"))
    raw_volumes = [_pos(v) for v in _list(tco.get("volumes"))]
    curves = _dict(tco.get("curves"))
    series = []
    skipped = False
    for m in models:
        if m["name"] not in curves:
            continue
        ys = [_pos(y) for y in _list(curves.get(m["name"]))]
        pairs = [
            (x, ys[i] if i < len(ys) else None) for i, x in enumerate(raw_volumes) if x is not None
        ]
        skipped = skipped or any(y is None for _, y in pairs)
        series.append((m, pairs))
    xs_all = [x for x in raw_volumes if x is not None]
    ys_all = [y for _, pairs in series for _, y in pairs if y is not None]
    if not xs_all or not ys_all:
        return {"lines": [], "skipped": skipped}

    lx0, lx1 = math.log10(min(xs_all)), math.log10(max(xs_all))
    if lx1 - lx0 < 1e-9:
        lx0, lx1 = lx0 - 0.5, lx1 + 0.5
    ly0, ly1 = math.floor(math.log10(min(ys_all))), math.ceil(math.log10(max(ys_all)))
    if ly1 <= ly0:
        ly1 = ly0 + 1

    def px(v: float) -> float:
        return round(_C_LEFT + (math.log10(v) - lx0) / (lx1 - lx0) * (_C_RIGHT - _C_LEFT), 1)

    def py(v: float) -> float:
        return round(_C_BOTTOM - (math.log10(v) - ly0) / (ly1 - ly0) * (_C_BOTTOM - _C_TOP), 1)

    lines = []
    for i, (m, pairs) in enumerate(series):
        segments: list[list[tuple[float, float]]] = [[]]
        for x, y in pairs:
            if y is None:
                segments.append([])
            else:
                segments[-1].append((px(x), py(y)))
        lines.append(
            {
                "label": _truncate(m["label"], 24),
                "title": m["label"],
                "kind": m["kind"],
                "color": m["color"],
                "dash": "7 4" if m["kind"] == "open" else "",
                "paths": [" ".join(f"{a},{b}" for a, b in s) for s in segments if len(s) > 1],
                "dots": [pt for s in segments for pt in s],
                "legend_y": _C_TOP + 8 + i * 22,
            }
        )

    curve_points = {m["name"]: pairs for m, pairs in series}
    markers = []
    for j, be in enumerate(_dict(b) for b in _list(tco.get("break_even"))):
        v = _pos(be.get("volume_tokens_per_month"))
        if v is None or not lx0 - 1e-9 <= math.log10(v) <= lx1 + 1e-9:
            continue
        y = None
        for name in (_str(be.get("open")), _str(be.get("closed"))):
            pts = curve_points.get(name)
            if pts and y is None:
                y = _interp_loglog([p[0] for p in pts], [p[1] for p in pts], v)
        cx = px(v)
        cy = _C_BOTTOM if y is None else max(_C_TOP, min(_C_BOTTOM, py(y)))
        markers.append(
            {
                "x": cx,
                "y": cy,
                "label": _compact(v),
                "label_y": max(_C_TOP + 10, cy - 12 - 13 * (j % 2)),
                "title": _str(be.get("sentence")) or f"break-even at {_compact(v)} tokens/month",
            }
        )

    now = None
    if (
        volume_now is not None
        and volume_now > 0
        and lx0 - 1e-9 <= math.log10(volume_now) <= lx1 + 1e-9
    ):
        now = {"x": px(volume_now), "label": f"your volume: {_compact(volume_now)}"}

    x_ticks = [{"x": px(t), "label": _compact(t)} for t in _log_ticks(lx0, lx1)]
    y_ticks = [{"y": py(t), "label": _usd_tick(t)} for t in _log_ticks(ly0, ly1)]
    height = max(_C_HEIGHT, _C_TOP + 8 + len(lines) * 22 + 10)
    return {
        "lines": lines,
        "markers": markers,
        "now": now,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "left": _C_LEFT,
        "right": _C_RIGHT,
        "top": _C_TOP,
        "bottom": _C_BOTTOM,
        "mid_x": (_C_LEFT + _C_RIGHT) / 2,
        "mid_y": (_C_TOP + _C_BOTTOM) / 2,
        "legend_x": _C_LEGEND_X,
        "width": _C_WIDTH,
        "height": height,
        "skipped": skipped,
    }


def _tco(
    report: dict[str, Any], models: list[dict[str, Any]], volume: float | None
) -> dict[str, Any]:
    tco = _dict(report.get("tco"))
    volumes = [_num(v) for v in _list(tco.get("volumes"))]
    curves = _dict(tco.get("curves"))
    curve_models = [m for m in models if m["name"] in curves]
    table = [
        {
            "volume": _tokens(v),
            "cells": [
                _usd(_list(curves.get(m["name"]))[i])
                if i < len(_list(curves.get(m["name"])))
                else _DASH
                for m in curve_models
            ],
        }
        for i, v in enumerate(volumes)
    ]
    break_even = []
    for be in (_dict(b) for b in _list(tco.get("break_even"))):
        v = _num(be.get("volume_tokens_per_month"))
        break_even.append(
            {
                "open": _model_label(models, _str(be.get("open"))),
                "closed": _model_label(models, _str(be.get("closed"))),
                "volume": "never (no crossing)" if v is None else f"{_compact(v)} tokens/month",
                "sentence": _str(be.get("sentence")),
            }
        )
    return {
        "chart": _cost_chart(report, models, volume),
        "models": [m["label"] for m in curve_models],
        "table": table,
        "break_even": break_even,
        "assumptions": _strs(tco.get("assumptions")),
    }


def _flip_rows(report: dict[str, Any], models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "parameter": _str(f.get("parameter"), _DASH) or _DASH,
            "current": _value(f.get("current")),
            "flip_at": _value(f.get("flip_at")),
            "new_top": _model_label(models, _str(f.get("new_top"))) or _DASH,
            "sentence": _str(f.get("sentence")),
        }
        for f in (_dict(x) for x in _list(_dict(report.get("advice")).get("flip_points")))
    ]


def _excluded(report: dict[str, Any], models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"model": _model_label(models, _str(e.get("model"))), "reasons": _strs(e.get("reasons"))}
        for e in (_dict(x) for x in _list(_dict(report.get("advice")).get("excluded")))
    ]


def _sources(models: list[dict[str, Any]]) -> list[str]:
    """Each distinct published-benchmark source, with the benchmarks and date it backs."""
    by_source: dict[str, list[str]] = {}
    for m in models:
        for b in (_dict(x) for x in _list(m["raw"].get("published_benchmarks"))):
            source = _str(b.get("source"))
            if not source:
                continue
            what = _str(b.get("name")) or "benchmark"
            as_of = _str(b.get("as_of"))
            entry = f"{m['label']} {what}" + (f" (as of {as_of})" if as_of else "")
            by_source.setdefault(source, []).append(entry)
    return [f"{src} — {', '.join(items)}" for src, items in by_source.items()]


def _view(report: Any) -> dict[str, Any]:
    report = _dict(report)
    models = _models(report)
    header = _header(report)
    return {
        **header,
        "models": models,
        "recommendation": _recommendation(report, models),
        "ranking": _ranking(report, models),
        "profile": _profile(report),
        "dimensions": _dimension_table(report, models),
        "quality": _quality(report, models),
        "perf": _perf_rows(models),
        "tco": _tco(report, models, header["volume_tokens"]),
        "flips": _flip_rows(report, models),
        "excluded": _excluded(report, models),
        "sources": _sources(models),
        "unmeasured": [
            {"model": m["label"], "note": m["note"] or _NOT_MEASURED}
            for m in models
            if m["unmeasured"]
        ],
        "manifest": _clean(report.get("manifest")),
    }


# --------------------------------------------------------------------------- HTML


def _template() -> jinja2.Template:
    return page_template("crossroads.report", _TEMPLATE)


def render_report_html(report: dict[str, Any]) -> str:
    """The decision report as one self-contained, printable HTML page."""
    view = _view(report)
    manifest = view["manifest"]
    return _template().render(
        **view,
        manifest_json=_dumps(manifest, indent=2, sort_keys=True) if manifest else "",
    )


# --------------------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    """Inline Markdown text: one line, no raw HTML (``<`` / ``>`` become entities)."""
    s = re.sub(r"\s*[\r\n]+\s*", " ", _str(text))
    return s.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: Any) -> str:
    return _md(text).replace("|", "\\|") or " "


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _fence(text: str, lang: str = "") -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [ticks + lang, text, ticks, ""]


def render_report_markdown(report: dict[str, Any]) -> str:
    """The decision report as Markdown: the HTML page's sections as tables and lists."""
    v = _view(report)
    rec = v["recommendation"]
    lines = [f"# {_md(v['title'])}", ""]
    meta = [f"Generated: {_md(v['generated'])}"]
    if v["profile_name"]:
        meta.append(f"Profile: {_md(v['profile_name'])}")
    meta.append(f"Volume: {_md(v['volume'])}")
    lines += [" · ".join(meta), ""]

    lines += ["## Recommendation", ""]
    if rec["model"]:
        kind = f" ({rec['kind']})" if rec["kind"] else ""
        lines += [f"**{_md(rec['model'])}**{kind}", ""]
    else:
        lines += ["No recommendation.", ""]
    if rec["summary"]:
        lines += [_md(rec["summary"]), ""]
    if rec["flip_summary"]:
        lines += [f"**What would change this:** {_md(rec['flip_summary'])}", ""]
    if rec["stats"]:
        lines += _table(["Figure", "Value"], [[k, val] for k, val in rec["stats"]])
    if v["ranking"]:
        lines += ["### Ranking", ""]
        lines += _table(
            ["#", "Model", "Score", "Reasons"],
            [
                [str(r["rank"]), r["model"], r["score"], "; ".join(r["reasons"])]
                for r in v["ranking"]
            ],
        )

    prof = v["profile"]
    if v["profile_description"] or prof["weights"] or prof["constraints"]:
        lines += ["## Profile", ""]
        if v["profile_description"]:
            lines += [_md(v["profile_description"]), ""]
        if prof["weights"]:
            lines += _table(
                ["Dimension", "Weight"], [[w["dim"], w["weight"]] for w in prof["weights"]]
            )
        if prof["constraints"]:
            lines += ["Constraints:", ""]
            lines += [f"- {_md(c['key'])}: {_md(c['value'])}" for c in prof["constraints"]]
            lines += [""]

    lines += ["## Ten dimensions (0–10, higher is better for you)", ""]
    dims = v["dimensions"]
    labels = [m["label"] + (f" ({_NOT_MEASURED})" if m["unmeasured"] else "") for m in v["models"]]
    if dims["rows"]:
        rows = [[r["name"], r["weight"], *(c["text"] for c in r["cells"])] for r in dims["rows"]]
        if dims["totals"]:
            rows.append(["**Weighted score**", "", *dims["totals"]])
        lines += _table(["Dimension", "Weight", *labels], rows)
        evidence = [
            f"- **{_md(r['name'])}**, {_md(m['label'])}: {'; '.join(_md(e) for e in c['evidence'])}"
            for r in dims["rows"]
            for m, c in zip(v["models"], r["cells"], strict=False)
            if c["evidence"]
        ]
        if evidence:
            lines += ["<details><summary>Evidence</summary>", "", *evidence, "", "</details>", ""]
    else:
        lines += ["No dimension scores.", ""]
    if v["unmeasured"]:
        missing = "; ".join(f"{_md(u['model'])} ({_md(u['note'])})" for u in v["unmeasured"])
        lines += [f"Not measured here: {missing}", ""]

    q = v["quality"]
    lines += ["## Quality", ""]
    if q["suite"] or q["run_id"]:
        lines += [f"Suite: {_md(q['suite'] or _DASH)} · run {_md(q['run_id'] or _DASH)}", ""]
    if q["rows"]:
        lines += _table(
            ["Model", "Kind", "Mean [CI]", "Pass rate", "Measured here"],
            [
                [
                    r["model"],
                    r["kind"] or _DASH,
                    r["mean"],
                    r["pass_rate"],
                    "yes" if r["measured"] else f"no: {r['note'] or _NOT_MEASURED}",
                ]
                for r in q["rows"]
            ],
        )
    if q["benchmarks"]:
        lines += ["### Published benchmarks", ""]
        lines += _table(
            ["Model", "Benchmark", "Score", "Source", "As of"],
            [[b["model"], b["name"], b["score"], b["source"], b["as_of"]] for b in q["benchmarks"]],
        )
    if q["pairs"]:
        lines += ["### Significance", ""]
        lines += _table(
            ["A", "B", "Significant", "Verdict"],
            [
                [p["a"], p["b"], "yes" if p["significant"] else "no", p["verdict"]]
                for p in q["pairs"]
            ],
        )

    lines += ["## Latency and throughput", ""]
    if v["perf"]:
        lines += _table(
            ["Model", "Kind", "p50", "p95", "Tokens/s", "Context", "Params", "Licence"],
            [
                [
                    r["model"],
                    r["kind"] or _DASH,
                    r["p50"],
                    r["p95"],
                    r["tps"],
                    r["context"],
                    r["params"],
                    r["licence"],
                ]
                for r in v["perf"]
            ],
        )
    else:
        lines += ["No models.", ""]

    t = v["tco"]
    lines += ["## Cost vs volume", ""]
    if v["perf"]:
        lines += [f"At your volume ({_md(v['volume'])}):", ""]
        lines += _table(
            ["Model", "Monthly cost", "Cost per 1M tokens"],
            [[r["model"], r["monthly"], r["per_1m"]] for r in v["perf"]],
        )
    if t["table"] and t["models"]:
        lines += _table(
            ["Tokens/month", *t["models"]], [[r["volume"], *r["cells"]] for r in t["table"]]
        )
    if t["break_even"]:
        lines += ["### Break-even", ""]
        for be in t["break_even"]:
            sentence = be["sentence"] or f"{be['open']} vs {be['closed']}"
            lines.append(f"- {_md(sentence)} ({_md(be['volume'])})")
        lines += [""]

    lines += ["## Flip points", ""]
    if v["flips"]:
        lines += _table(
            ["Parameter", "Current", "Flips at", "New top"],
            [[f["parameter"], f["current"], f["flip_at"], f["new_top"]] for f in v["flips"]],
        )
        lines += [f"- {_md(f['sentence'])}" for f in v["flips"] if f["sentence"]] + [""]
    else:
        lines += ["No flip points within the explored ranges.", ""]

    lines += ["## Excluded options", ""]
    if v["excluded"]:
        lines += [
            f"- **{_md(e['model'])}**: {'; '.join(_md(r) for r in e['reasons']) or _DASH}"
            for e in v["excluded"]
        ]
        lines += [""]
    else:
        lines += ["No option was excluded.", ""]

    lines += ["## Assumptions and sources", ""]
    if t["assumptions"]:
        lines += [f"- {_md(a)}" for a in t["assumptions"]] + [""]
    if v["sources"]:
        lines += ["Sources:", ""] + [f"- {_md(s)}" for s in v["sources"]] + [""]
    if not t["assumptions"] and not v["sources"]:
        lines += ["No assumptions or sources recorded.", ""]

    lines += ["## Reproducibility manifest", ""]
    if v["manifest"]:
        lines += _fence(_dumps(v["manifest"], indent=2, sort_keys=True), "json")
    else:
        lines += ["No manifest.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- files


def write_report(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``report.json`` into the directory ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "report.html",
        "markdown": out / "report.md",
        "json": out / "report.json",
    }
    paths["html"].write_text(render_report_html(report), encoding="utf-8")
    paths["markdown"].write_text(render_report_markdown(report), encoding="utf-8")
    paths["json"].write_text(_dumps(report, indent=2) + "\n", encoding="utf-8")
    return paths
