"""The advisor: hard constraints, weighted dimensions, and where the answer would flip.

A :class:`Profile` (YAML, see ``examples/profiles/``) gives a weight to each of the ten
dimensions of :mod:`crossroads.decide.dimensions` and a few hard constraints. :func:`advise`
then

1. **excludes** candidates that break a constraint (every reason is listed):

   * the model is ``retired`` by its vendor (requests fail);
   * ``on_premises``: data must stay on premises, so every closed (API-only) model goes;
   * ``monthly_budget_usd``: the monthly cost at the profile's volume is above the budget
     (a candidate whose cost is unknown is kept, with a note);
   * ``no_ml_engineers``: open models that need more than a small single GPU are out,
     i.e. serving tier ``large-gpu`` or ``multi-gpu`` (fp16 weights above 20 GB, see
     :func:`~crossroads.decide.dimensions.serving_tier`); CPU-sized and single 24 GB-GPU
     models stay;
   * ``regulated``: requires control >= 7 **and** transparency >= 5;
   * ``languages``: each language must be *listed* in the catalog's ``languages`` text (its
     English name as a word, e.g. ``German``, or its ISO 639-1 code in a parenthesised code
     list such as ``(bg, ca, cs, ...)``; codes given in the profile are mapped to names), or
     - unless ``languages_strict`` - *claimed* by a text that declares the model broadly
     multilingual without a list ("Multilingual", "46 natural languages", "30+ languages",
     at least 20; such a claim counts as listing English); claimed matches are kept with
     a note to verify them with the multilingual suite;
   * ``p95_latency_s``: applies only to measured candidates (measured p95 above the limit);
2. **ranks** the rest by ``sum(w * s) / sum(w)`` (ties by name), with the dimensions that
   contribute most as reasons;
3. finds **flip points**: for each weight, the nearest value (raising it up to 10x its
   current value - up to 10 when it is 0 - or lowering it to 0) at which the top choice
   changes, solved exactly (each weighted score is linear-fractional in one weight); and for
   the volume, the nearest monthly volume (searched from 1/1000x to 1000x, 20 points per
   decade, then bisected) at which it changes, re-scoring cost at each volume through
   ``rescore_cost(volume) -> {name: cost score}`` (by default built from the candidates'
   cost curves, cost relative to the cheapest candidate) and re-checking the budget.

:func:`advise_at` re-runs the advisor with overrides (a weight, a constraint, the volume),
e.g. just past a flip point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..catalog import CatalogEntry
from .dimensions import DIMENSIONS, Evidence, score_model
from .exclusions import language_support
from .flips import FlipPoint, volume_flips, weight_flips
from .profile import Constraints, Profile, Weights, load_profile, with_overrides
from .ranking import (
    Candidate,
    CostCurve,
    CostRescorer,
    Excluded,
    Ranked,
    make_cost_rescorer,
    option_label,
    rank,
    ranking_reasons,
)

__all__ = [
    "Advice",
    "Candidate",
    "Constraints",
    "CostCurve",
    "CostRescorer",
    "Excluded",
    "FlipPoint",
    "Profile",
    "RankedOption",
    "Weights",
    "advise",
    "advise_at",
    "catalog_candidate",
    "language_support",
    "load_profile",
    "make_cost_rescorer",
    "option_label",
    "with_overrides",
]


class RankedOption(BaseModel):
    name: str
    label: str
    kind: str
    score: float
    monthly_cost_usd: float | None
    scores: dict[str, float]
    evidence: dict[str, list[str]]
    reasons: list[str]
    notes: list[str]


class Advice(BaseModel):
    profile: str
    volume_tokens_per_month: float
    ranking: list[RankedOption]
    excluded: list[Excluded]
    flip_points: list[FlipPoint]

    @property
    def top(self) -> str | None:
        return self.ranking[0].name if self.ranking else None


def catalog_candidate(
    entry: CatalogEntry,
    cost_curve: CostCurve | None,
    *,
    volume_tokens_per_month: float,
    evidence: Evidence | None = None,
    name: str | None = None,
) -> Candidate:
    """A candidate scored from catalog facts (plus ``evidence``), cost from ``cost_curve``."""
    ev = evidence or Evidence()
    monthly = cost_curve(volume_tokens_per_month) if cost_curve is not None else None
    if monthly is not None and ev.cost_per_1m_tokens_usd is None:
        per_1m = monthly / volume_tokens_per_month * 1e6
        ev = dataclasses.replace(ev, cost_per_1m_tokens_usd=per_1m)
    return Candidate(
        name=name or entry.id,
        entry=entry,
        dimension_scores=score_model(entry, ev),
        monthly_cost_usd=monthly,
        cost_curve=cost_curve,
        p95_latency_s=ev.p95_latency_s,
        measured=ev.measured,
    )


def _advice(profile: Profile, ranked: Ranked, flips: list[FlipPoint]) -> Advice:
    weights = profile.weights.as_dict()
    return Advice(
        profile=profile.name,
        volume_tokens_per_month=profile.constraints.volume_tokens_per_month,
        ranking=[
            RankedOption(
                name=cand.name,
                label=option_label(cand.entry),
                kind=cand.entry.kind,
                score=round(score, 4),
                monthly_cost_usd=monthly,
                scores={k: scores[k].score for k in DIMENSIONS},
                evidence={k: list(scores[k].evidence) for k in DIMENSIONS},
                reasons=ranking_reasons(scores, weights),
                notes=notes,
            )
            for score, cand, scores, monthly, notes in ranked.ranking
        ],
        excluded=ranked.excluded,
        flip_points=flips,
    )


def advise(
    profile: Profile,
    candidates: Sequence[Candidate],
    *,
    rescore_cost: CostRescorer | None = None,
    flip_points: bool = True,
) -> Advice:
    """Exclude, rank and find flip points (see the module docstring)."""
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise ValueError("candidate names must be unique")
    for cand in candidates:
        missing = [k for k in DIMENSIONS if k not in cand.dimension_scores]
        if missing:
            raise ValueError(f"candidate {cand.name!r} lacks scores for {missing}")
    rescore = rescore_cost or make_cost_rescorer(candidates)
    ranked = rank(profile, candidates, rescore)
    flips: list[FlipPoint] = []
    if flip_points:
        flips = weight_flips(profile, candidates, rescore, ranked)
        flips += volume_flips(profile, candidates, rescore, ranked)
    return _advice(profile, ranked, flips)


def advise_at(
    profile: Profile,
    candidates: Sequence[Candidate],
    *,
    rescore_cost: CostRescorer | None = None,
    flip_points: bool = False,
    **overrides: Any,
) -> Advice:
    """:func:`advise` with overrides: ``cost=3.2``, ``volume_tokens_per_month=5e7``, ...."""
    return advise(
        with_overrides(profile, **overrides),
        candidates,
        rescore_cost=rescore_cost,
        flip_points=flip_points,
    )
