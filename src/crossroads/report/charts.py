"""The report's two inline SVG charts, as geometry the template draws.

* Quality: horizontal bars of mean quality with CI whiskers; a model without a measurement
  gets a labelled empty row.
* Cost vs volume: monthly cost against monthly tokens on log-log axes, one line per model
  (dashed for open models, broken where a model cannot be costed), with the break-even
  points and the profile's volume marked.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._pages import fixed
from ..decide.decision import CostSection
from .formats import ci, compact, truncate, usd_tick

if TYPE_CHECKING:
    from .view import ModelView

__all__ = [
    "NOT_MEASURED",
    "OPEN_FILL",
    "PALETTE",
    "BreakEvenMarker",
    "CostChart",
    "CostLine",
    "QualityBar",
    "QualityChart",
    "VolumeMarker",
    "XTick",
    "YTick",
    "cost_chart",
    "label_box",
    "quality_chart",
]

NOT_MEASURED = "not measured here"

# Okabe-Ito (colour-blind safe) without the yellow, which is unreadable on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
OPEN_FILL, CLOSED_FILL = "#6cbf8c", "#7f9de0"

# Quality chart geometry (px).
_Q_LABEL_W, _Q_PLOT_W, _Q_ROW_H, _Q_TOP = 220, 420, 28, 44

# Cost chart geometry (px): plot box, then the legend to its right.
_C_LEFT, _C_RIGHT, _C_TOP, _C_BOTTOM = 80, 560, 34, 334
_C_LEGEND_X, _C_WIDTH, _C_HEIGHT = 584, 860, 384


@dataclass(frozen=True, slots=True)
class XTick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class YTick:
    y: float
    label: str


# --------------------------------------------------------------------------- quality


@dataclass(frozen=True, slots=True)
class QualityBar:
    label: str
    title: str
    mid: float
    bar_y: float
    bar_h: float
    w: float | None  # None: nothing measured
    fill: str
    value: str
    value_x: float
    whisker: tuple[float, float] | None
    missing: str


@dataclass(frozen=True, slots=True)
class QualityChart:
    bars: list[QualityBar]  # empty: no chart
    ticks: list[XTick] = field(default_factory=list)
    x0: float = 0.0
    left: float = _Q_LABEL_W
    top: float = _Q_TOP
    bottom: float = _Q_TOP
    width: float = 0.0
    height: float = 0.0
    legend_x: float = _Q_LABEL_W
    open_fill: str = OPEN_FILL
    closed_fill: str = CLOSED_FILL


def quality_chart(models: list[ModelView]) -> QualityChart:
    """Bars of mean quality with CI whiskers; unmeasured models get a labelled row."""
    rows = []
    values: list[float] = []
    for m in models:
        q = m.facts.quality
        mean, lo, hi = (q.mean, q.ci_low, q.ci_high) if q is not None else (None, None, None)
        values += [v for v in (mean, lo, hi) if v is not None]
        rows.append((m, mean, lo, hi))
    if not values:
        return QualityChart(bars=[])
    top = max(1.0, max(values))
    top = top if top <= 1.0 else float(math.ceil(top))
    low = min(0.0, min(values))

    def x(v: float) -> float:
        return round(_Q_LABEL_W + (max(low, min(top, v)) - low) / (top - low) * _Q_PLOT_W, 1)

    bars = []
    for i, (m, mean, lo, hi) in enumerate(rows):
        y = _Q_TOP + i * _Q_ROW_H
        bars.append(
            QualityBar(
                label=truncate(m.label, 30),
                title=f"{m.label}: {ci(mean, lo, hi)}",
                mid=y + _Q_ROW_H / 2,
                bar_y=y + 6,
                bar_h=_Q_ROW_H - 12,
                w=None if mean is None else max(0.0, round(x(mean) - x(0.0), 1)),
                fill=OPEN_FILL if m.kind == "open" else CLOSED_FILL,
                value=fixed(mean),
                value_x=x(max(mean or 0.0, hi or 0.0)) + 6,
                whisker=None if lo is None or hi is None else (x(lo), x(hi)),
                missing=NOT_MEASURED if m.unmeasured or mean is None else "",
            )
        )
    steps = 4 if top == 1.0 else int(top - low)
    ticks = [
        XTick(x(low + (top - low) * t / steps), f"{low + (top - low) * t / steps:g}")
        for t in range(steps + 1)
    ]
    bottom = _Q_TOP + len(rows) * _Q_ROW_H
    return QualityChart(
        bars=bars,
        ticks=ticks,
        x0=x(0.0),
        bottom=bottom,
        width=_Q_LABEL_W + _Q_PLOT_W + 70,
        height=bottom + 10,
    )


# --------------------------------------------------------------------------- cost


@dataclass(frozen=True, slots=True)
class CostLine:
    label: str
    title: str
    kind: str
    color: str
    dash: str
    paths: list[str]  # SVG polyline points, one per unbroken segment
    dots: list[tuple[float, float]]
    legend_y: float


@dataclass(frozen=True, slots=True)
class BreakEvenMarker:
    x: float
    y: float
    label: str
    label_y: float
    title: str


@dataclass(frozen=True, slots=True)
class VolumeMarker:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class CostChart:
    lines: list[CostLine]  # empty: no chart
    skipped: bool  # some model has no cost at some volume
    markers: list[BreakEvenMarker] = field(default_factory=list)
    now: VolumeMarker | None = None
    x_ticks: list[XTick] = field(default_factory=list)
    y_ticks: list[YTick] = field(default_factory=list)
    left: float = _C_LEFT
    right: float = _C_RIGHT
    top: float = _C_TOP
    bottom: float = _C_BOTTOM
    mid_x: float = (_C_LEFT + _C_RIGHT) / 2
    mid_y: float = (_C_TOP + _C_BOTTOM) / 2
    legend_x: float = _C_LEGEND_X
    width: float = _C_WIDTH
    height: float = _C_HEIGHT


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


def _pos(value: float | None) -> float | None:
    """A strictly positive number (plottable on a log axis), else None."""
    return value if value is not None and value > 0 else None


# Break-even labels: 11 px bold digits with a 4 px white halo (the template's .be-label).
_LABEL_CHAR_W, _LABEL_PAD, _LABEL_ASCENT, _LABEL_DESCENT = 7.0, 4.0, 12.0, 4.0
_MARKER_R = 8.0  # the marker circle (r 6.5 + stroke)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def label_box(x: float, baseline: float, text: str) -> Box:
    """The box a centred break-even label covers (a generous estimate of the glyphs)."""
    half = len(text) * _LABEL_CHAR_W / 2 + _LABEL_PAD
    return (x - half, baseline - _LABEL_ASCENT, x + half, baseline + _LABEL_DESCENT)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(markers: list[BreakEvenMarker]) -> list[BreakEvenMarker]:
    """Each label just above its point if free, else the nearest free slot above or below
    (13 px steps, within the plot): no label overlaps another label or another point."""
    circles: list[Box] = [
        (m.x - _MARKER_R, m.y - _MARKER_R, m.x + _MARKER_R, m.y + _MARKER_R) for m in markers
    ]
    placed: list[Box] = []
    out: dict[int, BreakEvenMarker] = {}
    low, high = _C_TOP + _LABEL_ASCENT, _C_BOTTOM - _LABEL_DESCENT
    for i in sorted(range(len(markers)), key=lambda k: (markers[k].x, markers[k].y)):
        m = markers[i]
        own = (m.x - _MARKER_R, m.y - _MARKER_R, m.x + _MARKER_R, m.y + _MARKER_R)
        others = [c for c in circles if c != own]
        tries = [m.y - 12 - 13 * k for k in range(40)] + [m.y + 20 + 13 * k for k in range(40)]
        tries.sort(key=lambda t: (abs(t - (m.y - 12)), t))
        choice = None
        for baseline in tries:
            if not low <= baseline <= high:
                continue
            box = label_box(m.x, baseline, m.label)
            if not any(_overlap(box, b) for b in placed + others):
                choice = baseline
                break
        if choice is None:  # no free slot in the plot: stack above everything placed
            choice = min([b[1] for b in placed] + [m.y]) - _LABEL_DESCENT - 1
        placed.append(label_box(m.x, choice, m.label))
        out[i] = dataclasses.replace(m, label_y=round(choice, 1))
    return [out[i] for i in range(len(markers))]


def cost_chart(tco: CostSection, models: list[ModelView], volume_now: float | None) -> CostChart:
    """A log-log line chart of monthly cost against monthly tokens, one line per model."""
    raw_volumes = [_pos(v) for v in tco.volumes]
    series = []
    skipped = False
    for m in models:
        if m.name not in tco.curves:
            continue
        ys = [_pos(y) for y in tco.curves[m.name]]
        pairs = [
            (x, ys[i] if i < len(ys) else None) for i, x in enumerate(raw_volumes) if x is not None
        ]
        skipped = skipped or any(y is None for _, y in pairs)
        series.append((m, pairs))
    xs_all = [x for x in raw_volumes if x is not None]
    ys_all = [y for _, pairs in series for _, y in pairs if y is not None]
    if not xs_all or not ys_all:
        return CostChart(lines=[], skipped=skipped)

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
            CostLine(
                label=truncate(m.label, 24),
                title=m.label,
                kind=m.kind,
                color=m.color,
                dash="7 4" if m.kind == "open" else "",
                paths=[" ".join(f"{a},{b}" for a, b in s) for s in segments if len(s) > 1],
                dots=[pt for s in segments for pt in s],
                legend_y=_C_TOP + 8 + i * 22,
            )
        )

    curve_points = {m.name: pairs for m, pairs in series}
    markers = []
    for be in tco.break_even:
        v = _pos(be.volume_tokens_per_month)
        if v is None or not lx0 - 1e-9 <= math.log10(v) <= lx1 + 1e-9:
            continue
        y = None
        for name in (be.open or "", be.closed or ""):
            pts = curve_points.get(name)
            if pts and y is None:
                y = _interp_loglog([p[0] for p in pts], [p[1] for p in pts], v)
        cx = px(v)
        cy = _C_BOTTOM if y is None else max(_C_TOP, min(_C_BOTTOM, py(y)))
        markers.append(
            BreakEvenMarker(
                x=cx,
                y=cy,
                label=compact(v),
                label_y=cy - 12,
                title=be.sentence or f"break-even at {compact(v)} tokens/month",
            )
        )
    markers = _place_labels(markers)

    now = None
    if (
        volume_now is not None
        and volume_now > 0
        and lx0 - 1e-9 <= math.log10(volume_now) <= lx1 + 1e-9
    ):
        now = VolumeMarker(px(volume_now), f"your volume: {compact(volume_now)}")

    return CostChart(
        lines=lines,
        skipped=skipped,
        markers=markers,
        now=now,
        x_ticks=[XTick(px(t), compact(t)) for t in _log_ticks(lx0, lx1)],
        y_ticks=[YTick(py(t), usd_tick(t)) for t in _log_ticks(ly0, ly1)],
        height=max(_C_HEIGHT, _C_TOP + 8 + len(lines) * 22 + 10),
    )
