"""The report's view model: every figure the HTML page and the Markdown twin print, as
text, built once from a :class:`~crossroads.decide.decision.DecisionReport`.

Models are listed recommended first, then in ranking order, then every other model the
report mentions; excluded options go last. A missing value prints as the dash; a section
with nothing to show is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._pages import DASH, clean_json, date_label, fixed, strict_dumps
from ..decide.decision import DecisionReport, ModelFacts
from .charts import NOT_MEASURED, PALETTE, CostChart, QualityChart, cost_chart, quality_chart
from .formats import ci, compact, general, int_text, params, pct, secs, setting, tint, tokens, usd

__all__ = [
    "DEFAULT_DIMENSIONS",
    "BreakEvenRow",
    "CostView",
    "DimensionCell",
    "DimensionRow",
    "DimensionTable",
    "ExcludedRow",
    "FlipView",
    "ModelView",
    "PerfRow",
    "ProfileView",
    "QualityView",
    "RankingRow",
    "RecommendationView",
    "ReportView",
    "build_view",
]

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


@dataclass(frozen=True, slots=True)
class ModelView:
    name: str
    label: str
    catalog_id: str
    kind: str  # "open", "closed" or "" (unknown)
    measured: bool
    unmeasured: bool  # explicitly not measured (neither flag: the report does not say)
    note: str
    licence: str
    recommended: bool
    excluded: bool
    color: str
    facts: ModelFacts


@dataclass(frozen=True, slots=True)
class RecommendationView:
    model: str
    kind: str
    unmeasured: bool
    summary: str
    flip_summary: str
    stats: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RankingRow:
    rank: int
    model: str
    score: str
    bar: float  # percent of the top score
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class WeightRow:
    dim: str
    weight: str


@dataclass(frozen=True, slots=True)
class ConstraintRow:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ProfileView:
    weights: list[WeightRow]
    constraints: list[ConstraintRow]


@dataclass(frozen=True, slots=True)
class DimensionCell:
    text: str
    tint: str
    evidence: list[str]


@dataclass(frozen=True, slots=True)
class DimensionRow:
    key: str
    name: str
    weight: str
    cells: list[DimensionCell]


@dataclass(frozen=True, slots=True)
class DimensionTable:
    rows: list[DimensionRow]
    totals: list[str]


@dataclass(frozen=True, slots=True)
class QualityRow:
    model: str
    kind: str
    mean: str
    tint: str
    pass_rate: str
    measured: bool
    unmeasured: bool
    note: str


@dataclass(frozen=True, slots=True)
class BenchmarkRow:
    model: str
    measured: bool
    name: str
    score: str
    source: str
    as_of: str


@dataclass(frozen=True, slots=True)
class PairRow:
    a: str
    b: str
    verdict: str
    significant: bool


@dataclass(frozen=True, slots=True)
class QualityView:
    suite: str
    run_id: str
    rows: list[QualityRow]
    chart: QualityChart
    benchmarks: list[BenchmarkRow]
    pairs: list[PairRow]
    any_measured: bool


@dataclass(frozen=True, slots=True)
class PerfRow:
    model: str
    kind: str
    unmeasured: bool
    p50: str
    p95: str
    tps: str
    context: str
    params: str
    licence: str
    monthly: str
    per_1m: str


@dataclass(frozen=True, slots=True)
class VolumeRow:
    volume: str
    cells: list[str]


@dataclass(frozen=True, slots=True)
class BreakEvenRow:
    open: str
    closed: str
    volume: str
    sentence: str


@dataclass(frozen=True, slots=True)
class CostView:
    chart: CostChart
    models: list[str]
    table: list[VolumeRow]
    break_even: list[BreakEvenRow]
    assumptions: list[str]


@dataclass(frozen=True, slots=True)
class FlipView:
    parameter: str
    current: str
    flip_at: str
    new_top: str
    sentence: str


@dataclass(frozen=True, slots=True)
class ExcludedRow:
    model: str
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class UnmeasuredRow:
    model: str
    note: str


@dataclass(frozen=True, slots=True)
class ReportView:
    title: str
    generated: str
    generated_raw: str
    profile_name: str
    profile_description: str
    volume: str
    volume_tokens: float | None
    models: list[ModelView]
    recommendation: RecommendationView
    ranking: list[RankingRow]
    profile: ProfileView
    dimensions: DimensionTable
    quality: QualityView
    perf: list[PerfRow]
    tco: CostView
    flips: list[FlipView]
    excluded: list[ExcludedRow]
    sources: list[str]
    unmeasured: list[UnmeasuredRow]
    manifest: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- models


def _models(report: DecisionReport) -> list[ModelView]:
    """Recommended first, then ranking order, then everything else seen; excluded last."""
    entries: dict[str, ModelFacts] = {}
    for m in report.models:
        name = m.name or m.catalog_id or m.display
        if name and name not in entries:
            entries[name] = m
    ranking = [r.model or "" for r in report.advice.ranking]
    excluded = {x.model or "" for x in report.advice.excluded}
    recommended = report.recommendation.model or ""
    candidates = [
        recommended,
        *ranking,
        *entries,
        *report.dimensions.scores,
        *report.tco.curves,
    ]
    order: list[str] = []
    for name in candidates:
        if name and name not in order:
            order.append(name)
    # Excluded options go last: they are listed, but they are not in the running.
    order.sort(key=lambda n: n in excluded)
    views = []
    for i, name in enumerate(order):
        m = entries.get(name) or ModelFacts()
        kind = (m.kind or "").lower()
        views.append(
            ModelView(
                name=name,
                label=m.display or name,
                catalog_id=m.catalog_id or "",
                kind=kind if kind in {"open", "closed"} else "",
                measured=m.measured is True,
                unmeasured=m.measured is False,
                note=m.note or "",
                licence=m.licence or DASH,
                recommended=name == recommended,
                excluded=name in excluded,
                color=PALETTE[i % len(PALETTE)],
                facts=m,
            )
        )
    return views


def _label(models: list[ModelView], name: str | None) -> str:
    name = name or ""
    return next((m.label for m in models if m.name == name), name)


# --------------------------------------------------------------------------- sections


def _recommendation(report: DecisionReport, models: list[ModelView]) -> RecommendationView:
    rec = report.recommendation
    m = next((m for m in models if m.name == (rec.model or "")), None)
    stats: list[tuple[str, str]] = []
    if m is not None:
        f, q = m.facts, m.facts.quality
        stats = [
            ("Quality (mean [CI])", ci(q.mean, q.ci_low, q.ci_high) if q else fixed(None)),
            ("Latency p50", secs(f.latency_p50_s)),
            ("Monthly cost at your volume", usd(f.monthly_cost_usd)),
            ("Cost per 1M tokens", usd(f.cost_per_1m_usd)),
            ("Licence", f.licence or DASH),
        ]
    return RecommendationView(
        model=_label(models, rec.model) if rec.model else "",
        kind=m.kind if m else "",
        unmeasured=bool(m and m.unmeasured),
        summary=rec.summary or "",
        flip_summary=rec.flip_summary or "",
        stats=stats,
    )


def _ranking(report: DecisionReport, models: list[ModelView]) -> list[RankingRow]:
    raw = report.advice.ranking
    top = max([*(r.score for r in raw if r.score is not None), 0.0])
    return [
        RankingRow(
            rank=i + 1,
            model=_label(models, r.model),
            score=fixed(r.score),
            bar=0 if r.score is None or top <= 0 else round(max(0.0, r.score) / top * 100, 1),
            reasons=r.reasons,
        )
        for i, r in enumerate(raw)
    ]


def _dimension_name(report: DecisionReport, key: str) -> str:
    return report.dimensions.names.get(key) or DEFAULT_DIMENSIONS.get(key) or key


def _profile(report: DecisionReport) -> ProfileView:
    profile = report.profile
    return ProfileView(
        weights=[
            WeightRow(_dimension_name(report, k), general(w)) for k, w in profile.weights.items()
        ],
        constraints=[
            ConstraintRow(k, v if isinstance(v, str) else strict_dumps(clean_json(v)))
            for k, v in profile.constraints.items()
        ],
    )


def _dimension_table(report: DecisionReport, models: list[ModelView]) -> DimensionTable:
    dims = report.dimensions
    weights = report.profile.weights
    keys: list[str] = []
    for k in [*dims.names, *(d for per in dims.scores.values() for d in per), *weights]:
        if k not in keys:
            keys.append(k)
    rows = []
    for key in keys:
        cells = []
        for m in models:
            s = dims.scores.get(m.name, {}).get(key)
            score = s.score if s else None
            cells.append(DimensionCell(fixed(score, 1), tint(score), s.evidence if s else []))
        rows.append(
            DimensionRow(
                key=key,
                name=_dimension_name(report, key),
                weight=general(weights[key]) if key in weights else DASH,
                cells=cells,
            )
        )
    ranking = {r.model or "": r.score for r in report.advice.ranking}
    totals = [fixed(ranking.get(m.name)) for m in models] if ranking else []
    return DimensionTable(rows if any(r.cells for r in rows) else [], totals)


def _quality(report: DecisionReport, models: list[ModelView]) -> QualityView:
    rows = []
    benchmarks = []
    for m in models:
        q = m.facts.quality
        rows.append(
            QualityRow(
                model=m.label,
                kind=m.kind,
                mean=ci(q.mean, q.ci_low, q.ci_high) if q else fixed(None),
                tint=tint(q.mean if q else None, 1.0),
                pass_rate=pct(q.pass_rate if q else None),
                measured=m.measured,
                unmeasured=m.unmeasured or q is None,
                note=m.note,
            )
        )
        for b in m.facts.published_benchmarks:
            benchmarks.append(
                BenchmarkRow(
                    model=m.label,
                    measured=m.measured,
                    name=b.name or DASH,
                    score=general(b.score) if not isinstance(b.score, str) else b.score,
                    source=b.source or DASH,
                    as_of=b.as_of or DASH,
                )
            )
    quality = report.quality
    pairs = [
        PairRow(
            a=_label(models, p.a),
            b=_label(models, p.b),
            verdict=p.verdict or DASH,
            significant=p.significant is True,
        )
        for p in quality.pairs
    ]
    return QualityView(
        suite=quality.suite or "",
        run_id=quality.run_id or "",
        rows=rows,
        chart=quality_chart(models),
        benchmarks=benchmarks,
        pairs=pairs,
        any_measured=any(r.measured for r in rows),
    )


def _perf_rows(models: list[ModelView]) -> list[PerfRow]:
    return [
        PerfRow(
            model=m.label,
            kind=m.kind,
            unmeasured=m.unmeasured,
            p50=secs(m.facts.latency_p50_s),
            p95=secs(m.facts.latency_p95_s),
            tps=fixed(m.facts.tokens_per_s, 1),
            context=int_text(m.facts.context_window),
            params=params(m.facts.params_b),
            licence=m.licence,
            monthly=usd(m.facts.monthly_cost_usd),
            per_1m=usd(m.facts.cost_per_1m_usd),
        )
        for m in models
    ]


def _tco(report: DecisionReport, models: list[ModelView], volume: float | None) -> CostView:
    tco = report.tco
    curve_models = [m for m in models if m.name in tco.curves]
    table = [
        VolumeRow(
            tokens(v),
            [usd(curve[i]) if i < len(curve := tco.curves[m.name]) else DASH for m in curve_models],
        )
        for i, v in enumerate(tco.volumes)
    ]
    break_even = [
        BreakEvenRow(
            open=_label(models, be.open),
            closed=_label(models, be.closed),
            volume="never (no crossing)"
            if (v := be.volume_tokens_per_month) is None
            else f"{compact(v)} tokens/month",
            sentence=be.sentence or "",
        )
        for be in tco.break_even
    ]
    return CostView(
        chart=cost_chart(tco, models, volume),
        models=[m.label for m in curve_models],
        table=table,
        break_even=break_even,
        assumptions=tco.assumptions,
    )


def _flips(report: DecisionReport, models: list[ModelView]) -> list[FlipView]:
    return [
        FlipView(
            parameter=f.parameter or DASH,
            current=setting(f.current),
            flip_at=setting(f.flip_at),
            new_top=_label(models, f.new_top) or DASH,
            sentence=f.sentence or "",
        )
        for f in report.advice.flip_points
    ]


def _sources(models: list[ModelView]) -> list[str]:
    """Each distinct published-benchmark source, with the benchmarks and date it backs."""
    by_source: dict[str, list[str]] = {}
    for m in models:
        for b in m.facts.published_benchmarks:
            if not b.source:
                continue
            what = b.name or "benchmark"
            entry = f"{m.label} {what}" + (f" (as of {b.as_of})" if b.as_of else "")
            by_source.setdefault(b.source, []).append(entry)
    return [f"{src} — {', '.join(items)}" for src, items in by_source.items()]


def build_view(report: DecisionReport) -> ReportView:
    """Everything the page and the Markdown print, in the order they print it."""
    models = _models(report)
    volume = report.volume
    tokens_now, share = volume.tokens_per_month, volume.input_share
    vol_text = DASH if tokens_now is None else f"{compact(tokens_now)} tokens/month"
    if tokens_now is not None and share is not None:
        vol_text += f" ({pct(share)} input)"
    return ReportView(
        title=report.title or "Open or closed? Decision report",
        generated=date_label(report.generated),
        generated_raw=report.generated or "",
        profile_name=report.profile.name or "",
        profile_description=report.profile.description or "",
        volume=vol_text,
        volume_tokens=tokens_now,
        models=models,
        recommendation=_recommendation(report, models),
        ranking=_ranking(report, models),
        profile=_profile(report),
        dimensions=_dimension_table(report, models),
        quality=_quality(report, models),
        perf=_perf_rows(models),
        tco=_tco(report, models, tokens_now),
        flips=_flips(report, models),
        excluded=[ExcludedRow(_label(models, x.model), x.reasons) for x in report.advice.excluded],
        sources=_sources(models),
        unmeasured=[UnmeasuredRow(m.label, m.note or NOT_MEASURED) for m in models if m.unmeasured],
        manifest=clean_json(report.manifest),
    )
