"""Ranking: candidates, their cost at a volume, exclusions applied, weighted scores.

(Moved from ``crossroads.decide.advisor``, which still exports the public names.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from ..catalog import CatalogEntry
from .dimensions import DIMENSIONS, DimensionScore, cost_score
from .exclusions import exclusion_reasons, fmt_tokens
from .profile import Profile

__all__ = [
    "Candidate",
    "CostCurve",
    "CostRescorer",
    "Excluded",
    "Ranked",
    "make_cost_rescorer",
    "option_label",
    "rank",
    "ranking_reasons",
    "top_choice",
    "weighted_score",
]

#: Monthly tokens -> monthly USD.
CostCurve = Callable[[float], float]
#: Monthly tokens -> cost dimension score per candidate name.
CostRescorer = Callable[[float], dict[str, DimensionScore]]


@dataclass(frozen=True)
class Candidate:
    """One option to rank: a catalog model with its dimension scores and cost."""

    name: str
    entry: CatalogEntry
    dimension_scores: Mapping[str, DimensionScore]
    monthly_cost_usd: float | None = None
    cost_curve: CostCurve | None = None  # monthly tokens -> monthly USD
    p95_latency_s: float | None = None
    measured: bool = False


class Excluded(BaseModel):
    name: str
    label: str
    reasons: list[str]


def option_label(entry: CatalogEntry) -> str:
    """How a sentence names the option: "self-hosting Llama 3.1 8B" or "GPT-4o mini"."""
    return f"self-hosting {entry.name}" if entry.self_host is not None else entry.name


def make_cost_rescorer(candidates: Sequence[Candidate]) -> CostRescorer:
    """Cost scores at a volume from the candidates' cost curves (cheapest curve = 10)."""
    curves = {c.name: c.cost_curve for c in candidates if c.cost_curve is not None}

    def rescore(volume: float) -> dict[str, DimensionScore]:
        per_1m = {name: curve(volume) / volume * 1e6 for name, curve in curves.items()}
        if not per_1m:
            return {}
        cheapest = min(per_1m.values())
        return {
            name: DimensionScore(
                cost_score(cost, cheapest),
                [
                    f"cost per 1M tokens at {fmt_tokens(volume)} tokens/month: ${cost:.4g} "
                    f"(${cost * volume / 1e6:,.2f}/month)",
                    f"cheapest candidate: ${cheapest:.4g} per 1M (log scale, 10x dearer = -2.5)",
                ],
            )
            for name, cost in per_1m.items()
        }

    return rescore


def weighted_score(scores: Mapping[str, DimensionScore], weights: Mapping[str, float]) -> float:
    total = math.fsum(weights.values())
    return math.fsum(w * scores[k].score for k, w in weights.items()) / total


def ranking_reasons(
    scores: Mapping[str, DimensionScore], weights: Mapping[str, float]
) -> list[str]:
    total = math.fsum(weights.values())
    parts = sorted(
        (k for k in DIMENSIONS if weights[k] > 0),
        key=lambda k: (-weights[k] * scores[k].score, k),
    )
    out = [
        f"{DIMENSIONS[k]} {scores[k].score:.1f}/10 (weight {weights[k]:g}, "
        f"{weights[k] * scores[k].score / total:.2f} points): {scores[k].evidence[0]}"
        for k in parts[:3]
    ]
    weakest = min(parts, key=lambda k: (scores[k].score, k))
    out.append(f"weakest: {DIMENSIONS[weakest]} {scores[weakest].score:.1f}/10")
    return out


@dataclass(frozen=True)
class Ranked:
    """Candidates kept (best first: score, candidate, scores, monthly cost, notes) and
    excluded."""

    ranking: list[tuple[float, Candidate, dict[str, DimensionScore], float | None, list[str]]]
    excluded: list[Excluded]


def rank(profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer) -> Ranked:
    c = profile.constraints
    weights = profile.weights.as_dict()
    cost_scores = rescore(c.volume_tokens_per_month)
    rows, excluded = [], []
    for cand in candidates:
        scores = dict(cand.dimension_scores)
        if cand.name in cost_scores:
            scores["cost"] = cost_scores[cand.name]
        curve = cand.cost_curve
        monthly = curve(c.volume_tokens_per_month) if curve else cand.monthly_cost_usd
        reasons, notes = exclusion_reasons(c, cand, scores, monthly)
        if reasons:
            excluded.append(
                Excluded(name=cand.name, label=option_label(cand.entry), reasons=reasons)
            )
        else:
            rows.append((weighted_score(scores, weights), cand, scores, monthly, notes))
    rows.sort(key=lambda row: (-row[0], row[1].name))
    return Ranked(rows, excluded)


def top_choice(ranked: Ranked) -> Candidate | None:
    return ranked.ranking[0][1] if ranked.ranking else None
