"""The seed's ten dimensions, scored 0-10 per model from catalog facts and measurements.

Every score carries its evidence: the facts (with their values) it came from. Scoring is
pure and deterministic: the same entry and :class:`Evidence` always give the same scores.
Measured facts (from ``crossroads eval``, TCO) win over catalog facts; catalog-only
performance is marked "not measured here". The full rubric with examples is in
``docs/dimensions.md``; in short:

cost
    Cost per 1M tokens at the profile's volume (from TCO), relative to the cheapest
    candidate: ``10 - 2.5 x log10(cost / cheapest)`` (10x dearer = 7.5, 10,000x = 0), costs
    floored at $0.01 per 1M. Without a candidate set the anchor is $0.10 per 1M. Unknown
    cost: neutral 5.
customization
    Open weights with full fine-tuning / LoRA: 10, minus the licence's limits on derivatives
    (community AUP -1, RAIL use restrictions -1.5, research-only -3). Closed: self-serve
    vendor fine-tuning API 5, fine-tuning only through a partner cloud or invite-only 3.5,
    none (prompting and tools only) 2, retired 0.
transparency
    Weights downloadable 4 + training data disclosed (full 3, partial 1.5, none 0; see
    :func:`training_data_disclosure`) + licence (osi 3, rail 2, community 1.5, research 1,
    proprietary 0).
performance
    Measured: 10 x quality / best measured quality (``quality_mean`` in 0-1; best = 1
    without a candidate set), blended 80/20 with latency (``10 - 2.5 x log2(p95 / 1 s)``)
    when p95 latency is measured. Otherwise
    published benchmarks, "not measured here": MMLU-type scores / 10, SWE-bench Verified
    via ``(65 + 0.3 x score) / 10``; the best one counts. No benchmark: open models get a
    size prior ``4.9 + 0.6 x log2(params / 1.24B)`` minus 1.5 per year released before
    2024-07, within 1-7; closed models 7.
ease_of_use
    Closed active 9, legacy 8 (migration ahead), retired 0. Open by serving tier
    (:func:`serving_tier`): cpu 7, small-gpu 5.5, large-gpu 4.5, multi-gpu
    ``4 - log2(GPUs)`` (at least 1).
scalability
    Closed active 9, legacy 7, retired 0. Open: cpu 5, small-gpu 6, large-gpu 5, multi-gpu
    ``4.5 - log2(GPUs)`` (at least 1.5): you run and replicate the servers yourself.
support
    Closed: vendor support 7 + SLA / enterprise support 1 + status page 0.5 + resale through
    other clouds 1 (decommissioned: 0.5). Open: 2 + 1 per community channel (at most 3)
    + 1.5 when commercial support or hosting is available from partners.
ecosystem
    An explicit table by family (:data:`ECOSYSTEM`: tooling, integrations, fine-tunes),
    -1 for legacy, 1 for retired models.
control
    Self-hostable on premises: 10. Vendor API: an explicit table of data terms per
    provider (:data:`API_CONTROL`, 3.5-4.5), retired 0.
ethics_bias
    Measured: 10 x mean(bias consistency, safety score) of those measured. Otherwise a
    prior, "not measured here": closed 5 (vendor safeguards, no visibility); open
    3 + data disclosure (full 3, partial 1.5) + use policy (RAIL 2, community AUP /
    usage policy 1, research-only 1).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..catalog import CatalogEntry
from .hosting import ServingPlan, serving_plans

__all__ = [
    "API_CONTROL",
    "DIMENSIONS",
    "ECOSYSTEM",
    "DimensionScore",
    "Evidence",
    "ScoringContext",
    "ServingTier",
    "cost_score",
    "gpus_needed",
    "score_model",
    "score_models",
    "scoring_context",
    "serving_tier",
    "training_data_disclosure",
]

#: The ten dimensions of the seed article, in its order: key -> display name.
DIMENSIONS: dict[str, str] = {
    "cost": "Cost",
    "customization": "Customization",
    "transparency": "Transparency",
    "performance": "Performance",
    "ease_of_use": "Ease of use",
    "scalability": "Scalability",
    "support": "Support",
    "ecosystem": "Innovation & ecosystem",
    "control": "Control (data privacy & residency)",
    "ethics_bias": "Ethics & bias",
}

ServingTier = Literal["api", "cpu", "small-gpu", "large-gpu", "multi-gpu"]
Disclosure = Literal["full", "partial", "none"]

#: Innovation & ecosystem by family: (score, why). Unknown families get 5.
ECOSYSTEM: dict[str, tuple[float, str]] = {
    "GPT-4": (9.0, "de-facto standard API; most SDKs, frameworks and tools target it"),
    "GPT-5": (9.0, "de-facto standard API; most SDKs, frameworks and tools target it"),
    "o-series": (8.5, "OpenAI API ecosystem; reasoning-model tooling"),
    "Claude": (8.0, "broad framework support; also on AWS Bedrock and Google Vertex AI"),
    "Gemini": (7.5, "Google Cloud / Vertex AI integration, growing framework support"),
    "PaLM": (2.0, "decommissioned API, superseded by Gemini"),
    "LLaMA": (9.0, "most fine-tuned open family; first-class in llama.cpp, Ollama, vLLM, TGI"),
    "gpt-oss": (7.0, "recent open weights; supported by vLLM, Ollama, llama.cpp"),
    "Falcon": (6.0, "supported by transformers, TGI and vLLM; fewer community fine-tunes"),
    "BLOOM": (5.0, "research-workshop model; transformers and TGI; little new work"),
    "GPT-J": (5.0, "early open model; transformers support, few current fine-tunes"),
    "GPT-NeoX": (5.0, "open training library and model; transformers support"),
    "SmolLM": (6.0, "small-model community; GGUF, llama.cpp, transformers.js, recipes"),
}

#: Control of data for vendor APIs by provider: (score, terms). Self-hosting scores 10.
API_CONTROL: dict[str, tuple[float, str]] = {
    "openai": (4.0, "no training on API data by default; zero retention / residency on approval"),
    "anthropic": (4.5, "no training on API data by default; also in a chosen AWS or GCP region"),
    "google": (3.5, "paid tier not used for training, unpaid tier may be; Vertex AI regions"),
}
_DEFAULT_API_CONTROL = (3.0, "vendor-hosted API on the vendor's data terms")

_LICENCE_TRANSPARENCY = {"osi": 3.0, "rail": 2.0, "community": 1.5, "research": 1.0}
_LICENCE_CUSTOM_PENALTY = {"community": 1.0, "rail": 1.5, "research": 3.0}
_DISCLOSURE_POINTS = {"full": 3.0, "partial": 1.5, "none": 0.0}
_USE_POLICY_POINTS = {"rail": 2.0, "community": 1.0, "research": 1.0}
_TIER_EASE = {"cpu": 7.0, "small-gpu": 5.5, "large-gpu": 4.5}
_TIER_SCALE = {"cpu": 5.0, "small-gpu": 6.0, "large-gpu": 5.0}
_NONE_RE = re.compile(r"^not (disclosed|released)", re.I)
_FULL_RE = re.compile(
    r"documented|are public|is public|are published|public crosslingual|"
    r"proportions in the paper|search tool over the data",
    re.I,
)
_COST_FLOOR = 0.01  # USD per 1M tokens
_COST_ANCHOR = 0.10  # USD per 1M tokens scoring 10 when there is no candidate set
_PRIOR_ANCHOR = dt.date(2024, 7, 23)  # Llama 3.1: the size prior is fitted on its MMLU


@dataclass(frozen=True, slots=True)
class DimensionScore:
    """A 0-10 score and the facts (with values) it came from."""

    score: float
    evidence: list[str]

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 10.0 or math.isnan(self.score):
            raise ValueError(f"score {self.score} outside 0-10")
        if not self.evidence:
            raise ValueError("a score needs at least one piece of evidence")


@dataclass(frozen=True)
class Evidence:
    """Facts measured by Crossroads for one model (all optional)."""

    quality_mean: float | None = None  # 0-1, from an eval run
    quality_ci: tuple[float, float] | None = None  # 95 % interval of quality_mean
    p95_latency_s: float | None = None
    tokens_per_s: float | None = None
    cost_per_1m_tokens_usd: float | None = None  # TCO at the profile's volume
    bias_consistency: float | None = None  # 0-1, bias suite
    safety_score: float | None = None  # 0-1, safety suite
    measured: bool = False
    published_benchmarks: Mapping[str, float] = field(default_factory=dict)
    #: Where the measured quality comes from, e.g. "measured on 40 production requests
    #: between 2026-12-01 and 2026-12-05" (``crossroads compare --evidence``).
    quality_source: str | None = None


@dataclass(frozen=True, slots=True)
class ScoringContext:
    """What relative scores are relative to: the best measured quality, the cheapest cost."""

    best_quality: float | None = None
    cheapest_cost_per_1m_usd: float | None = None


def _clamp(value: float) -> float:
    return round(min(10.0, max(0.0, value)), 3)


def _ds(score: float, *evidence: str) -> DimensionScore:
    return DimensionScore(_clamp(score), list(evidence))


def training_data_disclosure(entry: CatalogEntry) -> Disclosure:
    """full: sources documented/public; none: "Not disclosed/released ..."; else partial."""
    text = entry.training_data.strip()
    if _NONE_RE.match(text):
        return "none"
    return "full" if _FULL_RE.search(text) else "partial"


def _plan(entry: CatalogEntry) -> ServingPlan | None:
    """The smallest serving tier the model fits (:mod:`.hosting`), None for closed models."""
    plans = serving_plans(entry)
    return plans[0] if plans else None


def gpus_needed(entry: CatalogEntry) -> int:
    """GPUs per replica on the smallest sufficient serving tier (:mod:`.hosting`): 0 for
    closed models and for models served on a CPU instance."""
    plan = _plan(entry)
    return plan.count if plan is not None and plan.kind == "gpu" else 0


def serving_tier(entry: CatalogEntry) -> ServingTier:
    """api, or the smallest sufficient serving tier (:mod:`.hosting`): cpu (one CPU instance),
    small-gpu (one card of <= 24 GB), large-gpu (one data-centre GPU), multi-gpu; a model too
    big for 8 GPUs is multi-gpu."""
    if entry.self_host is None:
        return "api"
    plan = _plan(entry)
    return plan.tier if plan is not None else "multi-gpu"


def _hosting_text(entry: CatalogEntry) -> str:
    plan = _plan(entry)
    return plan.describe() if plan is not None else "tier multi-gpu: more than 8 GPUs"


def cost_score(cost_per_1m_usd: float, cheapest_per_1m_usd: float) -> float:
    """``10 - 2.5 x log10(cost / cheapest)`` with both floored at $0.01 per 1M, in 0-10."""
    ratio = max(cost_per_1m_usd, _COST_FLOOR) / max(cheapest_per_1m_usd, _COST_FLOOR)
    return _clamp(10.0 - 2.5 * math.log10(max(ratio, 1.0)))


def _cost(entry: CatalogEntry, ev: Evidence, ctx: ScoringContext) -> DimensionScore:
    if ev.cost_per_1m_tokens_usd is None:
        return _ds(5.0, "cost: not estimated (no TCO at the profile's volume); neutral 5")
    cost = ev.cost_per_1m_tokens_usd
    ref, label = ctx.cheapest_cost_per_1m_usd, "cheapest candidate"
    if ref is None:
        ref, label = _COST_ANCHOR, "anchor"
    return _ds(
        cost_score(cost, ref),
        f"cost per 1M tokens at the profile's volume: ${cost:.4g}",
        f"{label}: ${ref:.4g} per 1M (log scale, 10x dearer = -2.5)",
    )


def _customization(entry: CatalogEntry) -> DimensionScore:
    ft = f"fine_tuning: {entry.fine_tuning!r}"
    if entry.self_host is not None:
        cat = entry.licence.category
        penalty = _LICENCE_CUSTOM_PENALTY.get(cat, 0.0)
        weights_ok = re.search(r"lora|full fine-tuning", entry.fine_tuning, re.I) is not None
        base = 10.0 if weights_ok else 8.0
        return _ds(
            base - penalty,
            f"open weights ({'LoRA / full fine-tuning' if weights_ok else 'weights editable'}"
            f": {base:g})",
            f"licence {entry.licence.name} ({cat}): -{penalty:g}",
            ft,
        )
    if entry.status == "retired":
        return _ds(0.0, "status: retired (nothing can be tuned or served)", ft)
    text = entry.fine_tuning.lower()
    if text.startswith("none") or "no self-serve" in text:
        score, why = 2.0, "no vendor fine-tuning: prompting, system prompts and tools only"
    elif "only through" in text or "invite-only" in text:
        score, why = 3.5, "fine-tuning only through a partner cloud or an invite-only programme"
    else:
        score, why = 5.0, "vendor fine-tuning API (weights stay with the vendor)"
    return _ds(score, f"closed model: {why}", ft)


def _transparency(entry: CatalogEntry) -> DimensionScore:
    weights = 4.0 if entry.self_host is not None else 0.0
    disclosure = training_data_disclosure(entry)
    data = _DISCLOSURE_POINTS[disclosure]
    licence = _LICENCE_TRANSPARENCY.get(entry.licence.category, 0.0)
    return _ds(
        weights + data + licence,
        f"weights: {'downloadable' if weights else 'not available'} ({weights:g}/4)",
        f"training data: {disclosure} disclosure ({data:g}/3): {entry.training_data!r}",
        f"licence: {entry.licence.name} ({entry.licence.category}, {licence:g}/3)",
    )


def _benchmark_equiv(name: str, score: float) -> float | None:
    lowered = name.lower()
    if lowered.startswith("mmlu"):
        return score / 10.0
    if lowered.startswith("swe-bench verified"):
        return (65.0 + 0.3 * score) / 10.0
    return None


def _performance(entry: CatalogEntry, ev: Evidence, ctx: ScoringContext) -> DimensionScore:
    if ev.measured and ev.quality_mean is not None:
        best = ctx.best_quality if ctx.best_quality else 1.0
        quality = 10.0 * ev.quality_mean / best if best > 0 else 0.0
        ci = f" (95% CI {ev.quality_ci[0]:.3f}-{ev.quality_ci[1]:.3f})" if ev.quality_ci else ""
        facts = [f"measured quality: {ev.quality_mean:.3f}{ci}, best measured {best:.3f}"]
        if ev.quality_source:
            facts[0] += f", {ev.quality_source}"
        score = quality
        if ev.p95_latency_s is not None:
            latency = _clamp(10.0 - 2.5 * math.log2(max(ev.p95_latency_s, 1e-3)))
            score = 0.8 * quality + 0.2 * latency
            facts.append(f"measured p95 latency: {ev.p95_latency_s:.2f} s ({latency:g}/10)")
        if ev.tokens_per_s is not None:
            facts.append(f"measured throughput: {ev.tokens_per_s:.1f} tokens/s")
        return _ds(score, *facts)
    benchmarks = dict(ev.published_benchmarks) or {b.name: b.score for b in entry.benchmarks}
    scored = [(n, s, _benchmark_equiv(n, s)) for n, s in sorted(benchmarks.items())]
    usable = [(n, s, e) for n, s, e in scored if e is not None]
    if usable:
        name, raw, equiv = max(usable, key=lambda item: (item[2], item[0]))
        return _ds(equiv, f"published {name}: {raw:g} (not measured here) -> {equiv:.2f}")
    if entry.self_host is not None and entry.parameters_b:
        years = max(0.0, (_PRIOR_ANCHOR - entry.released).days / 365.25)
        size = 4.9 + 0.6 * math.log2(entry.parameters_b / 1.24)
        return _ds(
            min(7.0, max(1.0, size - 1.5 * years)),
            f"no usable published benchmark (not measured here); size prior from "
            f"{entry.parameters_b:g}B parameters, -1.5 per year released before 2024-07 "
            f"({years:.1f} y), between 1 and 7",
        )
    return _ds(7.0, "no usable published benchmark (not measured here); closed-API prior 7")


def _ease(entry: CatalogEntry) -> DimensionScore:
    tier = serving_tier(entry)
    if tier == "api":
        score = {"active": 9.0, "legacy": 8.0}.get(entry.status, 0.0)
        return _ds(score, f"managed API, no hosting ({entry.status})")
    gpus = max(1, gpus_needed(entry))
    score = _TIER_EASE.get(tier, max(1.0, 4.0 - math.log2(gpus)))
    assert entry.self_host is not None
    return _ds(
        score,
        f"self-hosting needs ML engineering: {_hosting_text(entry)} "
        f"(weights {entry.self_host.memory_gb.fp16:g} GB fp16)",
    )


def _scalability(entry: CatalogEntry) -> DimensionScore:
    tier = serving_tier(entry)
    if tier == "api":
        score = {"active": 9.0, "legacy": 7.0}.get(entry.status, 0.0)
        return _ds(score, f"provider scales the API ({entry.status})")
    gpus = max(1, gpus_needed(entry))
    score = _TIER_SCALE.get(tier, max(1.5, 4.5 - math.log2(gpus)))
    return _ds(score, f"you replicate the servers: {_hosting_text(entry)} per replica")


def _support(entry: CatalogEntry) -> DimensionScore:
    items = entry.support
    joined = " | ".join(items).lower()
    listed = f"support: {'; '.join(items)}"
    if "decommissioned" in joined:
        return _ds(0.5, "decommissioned: no support", listed)
    if entry.self_host is None:
        sla = any(k in joined for k in ("sla", "enterprise support", "customer care"))
        status = "status" in joined
        resale = "bedrock" in joined or "also sold" in joined
        score = 7.0 + sla + 0.5 * status + resale
        return _ds(
            score,
            f"vendor support 7, SLA/enterprise {'+1' if sla else '+0'}, status page "
            f"{'+0.5' if status else '+0'}, other clouds {'+1' if resale else '+0'}",
            listed,
        )
    channels = [i for i in items if not i.lower().startswith("no ")]
    partners = "commercial support" in joined or "commercial hosting" in joined
    score = 2.0 + min(len(channels), 3) + (1.5 if partners else 0.0)
    return _ds(
        score,
        f"community support: {len(channels)} channel(s), partners "
        f"{'+1.5' if partners else '+0'} (no vendor SLA)",
        listed,
    )


def _ecosystem(entry: CatalogEntry) -> DimensionScore:
    base, why = ECOSYSTEM.get(entry.family, (5.0, "family not in the ecosystem table"))
    adjust = {"active": 0.0, "legacy": -1.0}.get(entry.status)
    score = base + adjust if adjust is not None else 1.0
    return _ds(score, f"family {entry.family}: {base:g} ({why})", f"status: {entry.status}")


def _control(entry: CatalogEntry) -> DimensionScore:
    if entry.self_host is not None:
        return _ds(10.0, "self-hostable on premises: data never leaves your infrastructure")
    if entry.status == "retired":
        return _ds(0.0, "retired API: cannot be used at all")
    score, terms = API_CONTROL.get(entry.provider, _DEFAULT_API_CONTROL)
    return _ds(score, f"vendor API ({entry.provider}): {terms}", f"licence: {entry.licence.allows}")


def _ethics(entry: CatalogEntry, ev: Evidence) -> DimensionScore:
    measured = {
        k: v
        for k, v in (("bias consistency", ev.bias_consistency), ("safety score", ev.safety_score))
        if v is not None
    }
    if measured:
        mean = sum(measured.values()) / len(measured)
        return _ds(10.0 * mean, *(f"measured {k}: {v:.3f}" for k, v in measured.items()))
    if entry.self_host is None:
        return _ds(
            5.0,
            "not measured here; closed prior 5: vendor safeguards and usage policy, but bias "
            "mitigation cannot be inspected",
            f"licence: {entry.licence.allows}",
        )
    disclosure = training_data_disclosure(entry)
    data = _DISCLOSURE_POINTS[disclosure]
    policy = _USE_POLICY_POINTS.get(entry.licence.category, 0.0)
    if not policy and "usage policy" in entry.licence.name.lower():
        policy = 1.0
    return _ds(
        3.0 + data + policy,
        f"not measured here; open prior 3 + inspectable data ({disclosure}: {data:g}) "
        f"+ use policy ({entry.licence.category}: {policy:g})",
        f"licence: {entry.licence.allows}",
    )


def score_model(
    entry: CatalogEntry, evidence: Evidence, *, context: ScoringContext | None = None
) -> dict[str, DimensionScore]:
    """All ten dimension scores of one model (keys and order of :data:`DIMENSIONS`).

    ``context`` makes cost and performance relative to a candidate set (see
    :func:`scoring_context`); without it they are scored against fixed anchors.
    """
    ctx = context or ScoringContext()
    return {
        "cost": _cost(entry, evidence, ctx),
        "customization": _customization(entry),
        "transparency": _transparency(entry),
        "performance": _performance(entry, evidence, ctx),
        "ease_of_use": _ease(entry),
        "scalability": _scalability(entry),
        "support": _support(entry),
        "ecosystem": _ecosystem(entry),
        "control": _control(entry),
        "ethics_bias": _ethics(entry, evidence),
    }


def scoring_context(evidence: Mapping[str, Evidence]) -> ScoringContext:
    """Best measured quality (when two or more were measured) and cheapest known cost."""
    qualities = [e.quality_mean for e in evidence.values() if e.measured]
    measured = [q for q in qualities if q is not None]
    costs = [e.cost_per_1m_tokens_usd for e in evidence.values()]
    return ScoringContext(
        # Relative to the best only when there is something to compare with: a lone
        # measured model is scored on the suite's absolute scale (mean x 10).
        best_quality=max(measured) if len(measured) >= 2 else None,
        cheapest_cost_per_1m_usd=min((c for c in costs if c is not None), default=None),
    )


def score_models(
    models: Mapping[str, tuple[CatalogEntry, Evidence]],
) -> dict[str, dict[str, DimensionScore]]:
    """Score several models relative to each other (cost and measured performance)."""
    ctx = scoring_context({name: ev for name, (_, ev) in models.items()})
    return {name: score_model(entry, ev, context=ctx) for name, (entry, ev) in models.items()}
