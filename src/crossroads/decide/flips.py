"""Flip points: how far one weight or the monthly volume can move before the advisor's top
choice changes (see :mod:`crossroads.decide.advisor`). (Moved from there.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from .dimensions import DIMENSIONS
from .exclusions import fmt_tokens
from .profile import Profile, with_overrides
from .ranking import Candidate, CostRescorer, Ranked, option_label, rank, top_choice

__all__ = ["FlipPoint", "volume_flips", "weight_flips"]

_WEIGHT_RANGE = 10.0  # weights are searched up to 10x their current value
_VOLUME_DECADES = 3  # volumes are searched from 1/1000x to 1000x
_VOLUME_STEPS_PER_DECADE = 20


class FlipPoint(BaseModel):
    """Where the top choice changes when one parameter moves (``value`` None: nowhere)."""

    kind: Literal["weight", "volume"]
    parameter: str
    direction: Literal["up", "down"]
    current: float
    value: float | None
    searched_to: float
    new_top: str | None
    sentence: str


def weight_flips(
    profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer, ranked: Ranked
) -> list[FlipPoint]:
    top = top_choice(ranked)
    if top is None:
        return []
    weights = profile.weights.as_dict()
    top_scores = ranked.ranking[0][2]
    flips = []
    for dim in DIMENSIONS:
        current = weights[dim]
        others = {k: w for k, w in weights.items() if k != dim}
        base = math.fsum(others.values())
        a_top = math.fsum(w * top_scores[k].score for k, w in others.items())
        for direction in ("up", "down"):
            limit = _WEIGHT_RANGE * current if current > 0 else _WEIGHT_RANGE
            limit = limit if direction == "up" else 0.0
            best: float | None = None
            for _, _cand, scores, _, _ in ranked.ranking[1:]:
                slope = scores[dim].score - top_scores[dim].score
                if slope == 0 or (slope > 0) != (direction == "up"):
                    continue
                a_i = math.fsum(w * scores[k].score for k, w in others.items())
                x = (a_top - a_i) / slope
                inside = current <= x <= limit if direction == "up" else limit <= x <= current
                if (
                    inside
                    and base + x > 0
                    and (best is None or abs(x - current) < abs(best - current))
                ):
                    best = x
            flips.append(
                _weight_flip(profile, candidates, rescore, top, dim, direction, best, limit)
            )
    return flips


def _weight_flip(
    profile: Profile,
    candidates: Sequence[Candidate],
    rescore: CostRescorer,
    top: Candidate,
    dim: str,
    direction: Literal["up", "down"],
    value: float | None,
    limit: float,
) -> FlipPoint:
    current = profile.weights.as_dict()[dim]
    name = DIMENSIONS[dim].lower()
    verb = "rises" if direction == "up" else "falls"
    new: Candidate | None = None
    if value is not None:
        step = 1e-6 * max(1.0, value)
        probe = value + step if direction == "up" else max(0.0, value - step)
        new = top_choice(rank(with_overrides(profile, **{dim: probe}), candidates, rescore))
    if value is None or new is None or new.name == top.name:
        how = f"up to {limit:g}" if direction == "up" else "down to 0"
        sentence = (
            f"the {name} weight can go {how} (now {current:g}) without changing the top choice"
        )
        return FlipPoint(
            kind="weight",
            parameter=dim,
            direction=direction,
            current=current,
            value=None,
            searched_to=limit,
            new_top=None,
            sentence=sentence,
        )
    sentence = (
        f"if the {name} weight {verb} from {current:g} to {value:.3g}, {option_label(new.entry)} "
        f"becomes the top choice instead of {option_label(top.entry)}"
    )
    return FlipPoint(
        kind="weight",
        parameter=dim,
        direction=direction,
        current=current,
        value=value,
        searched_to=limit,
        new_top=new.name,
        sentence=sentence,
    )


def volume_flips(
    profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer, ranked: Ranked
) -> list[FlipPoint]:
    top = top_choice(ranked)
    current = profile.constraints.volume_tokens_per_month
    if top is None:
        return []

    def top_at(volume: float) -> str | None:
        found = top_choice(
            rank(with_overrides(profile, volume_tokens_per_month=volume), candidates, rescore)
        )
        return found.name if found else None

    flips = []
    steps = _VOLUME_DECADES * _VOLUME_STEPS_PER_DECADE
    for direction in ("up", "down"):
        sign = 1 if direction == "up" else -1
        inner, found = current, None
        for k in range(1, steps + 1):
            volume = current * 10 ** (sign * k / _VOLUME_STEPS_PER_DECADE)
            if top_at(volume) != top.name:
                found = volume
                break
            inner = volume
        limit = current * 10 ** (sign * _VOLUME_DECADES)
        if found is None:
            lo, hi = sorted((current, limit))
            flips.append(
                FlipPoint(
                    kind="volume",
                    parameter="volume_tokens_per_month",
                    direction=direction,
                    current=current,
                    value=None,
                    searched_to=limit,
                    new_top=None,
                    sentence=f"from {fmt_tokens(lo)} to {fmt_tokens(hi)} tokens/month the top "
                    f"choice stays {option_label(top.entry)}",
                )
            )
            continue
        for _ in range(60):  # bisect in log space: inner keeps the top, found changes it
            mid = math.sqrt(inner * found)
            if mid in (inner, found):
                break
            if top_at(mid) == top.name:
                inner = mid
            else:
                found = mid
        new_name = top_at(found)
        new = next((c for c in candidates if c.name == new_name), None)
        where = "above" if sign > 0 else "below"
        if new is None:
            what = f"no candidate remains: {option_label(top.entry)} and every other is excluded"
        else:
            what = f"{option_label(new.entry)} becomes the top choice instead of "
            what += option_label(top.entry)
        sentence = f"{where} {fmt_tokens(found)} tokens/month {what}"
        flips.append(
            FlipPoint(
                kind="volume",
                parameter="volume_tokens_per_month",
                direction=direction,
                current=current,
                value=found,
                searched_to=limit,
                new_top=new_name,
                sentence=sentence,
            )
        )
    return flips
